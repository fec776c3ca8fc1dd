import type { Harness } from '../harness.js';
import { describeLoad } from '../http-measure.js';
import type { LoadJob } from '../load-child.js';
import { errorsOf, makeRow, type Scenario } from '../scenario.js';
import { basePayments, seededService } from './seeded-service.js';

const WARMUP_MIN = 1_000;

/**
 * A spray of random payment ids, 10^6 of them (5,000 in --quick): none
 * may leave anything behind. RSS is read after a warm-up spray of a tenth
 * of that (at least 1,000), when the heap has grown to its working size,
 * and again at the end.
 */
export const sprayMemory: Scenario = {
  name: 'spray-memory',
  async run(harness: Harness) {
    const { options } = harness;
    const total = options.quick ? 5_000 : 1_000_000;
    const { service } = await seededService(harness, 'spray-memory', (db) => {
      db.addPayments(basePayments(harness));
    });
    try {
      const spray: LoadJob = {
        label: 'spray',
        url: service.publicUrl,
        connections: options.connections,
        plan: { kind: 'redeem-random' },
        expectStatus: [404],
        amount: total,
      };
      await harness.drive({ ...spray, label: 'spray warm-up', amount: Math.max(WARMUP_MIN, total / 10) });
      const before = service.child.rssBytes();
      harness.progress(`  RSS after warm-up: ${(before / 1_048_576).toFixed(1)} MB; spraying ${total.toLocaleString('en-US')} ids`);
      const load = await harness.drive(spray, service.child);
      const after = service.child.rssBytes();
      harness.progress(`  service: ${describeLoad(load)}; RSS ${(after / 1_048_576).toFixed(1)} MB`);

      const row = makeRow({
        name: 'spray-memory',
        target: { op: '<=', value: 1.1 },
        load: { ...load, errors: errorsOf(load) },
        limit: 'RSS before (MB)',
        limitValue: before / 1_048_576,
        ratio: after / before,
        rssBytes: after,
      });
      return { row, details: { requests: total, rssBeforeBytes: before, rssAfterBytes: after, load } };
    } finally {
      await service.child.stop();
    }
  },
};
