import { performance } from 'node:perf_hooks';

import type { Harness } from '../harness.js';
import { describeLoad, measureBareHono, measureLoad, probe } from '../http-measure.js';
import type { LoadResult } from '../load-child.js';
import type { Scenario } from '../scenario.js';
import { SeedDatabase } from '../seed-database.js';
import { outcome } from './http-comparison.js';
import { redeemRequest } from './redeem-miss.js';
import { basePayments, seededService, startOn } from './seeded-service.js';

/** Fresh ids seeded per second of load, relative to the limit's rate. */
const HEADROOM = 1.5;

/**
 * First redeems of paid ids: each request reads the payments, derives the
 * token and inserts the claim in its own SQLite transaction. Every id is
 * sent once; the ids are seeded after the limit is known, enough for the
 * warm-up and the run at 1.5 times the limit's rate.
 */
export const redeemClaim: Scenario = {
  name: 'redeem-claim',
  async run(harness: Harness) {
    const route = { method: 'POST', path: '/api/v1/redeem' } as const;
    const first = await seededService(harness, 'redeem-claim', (db) =>
      db.addPayments(basePayments(harness), 1),
    );
    let limit: LoadResult;
    let answer;
    try {
      answer = await probe(first.service.publicUrl, redeemRequest(first.seeded[0]!));
      const plan = { kind: 'redeem-list', file: harness.listFile('probe', first.seeded), once: false } as const;
      limit = await measureBareHono(harness, route, answer, { label: 'redeem-claim', plan });
    } finally {
      await first.service.child.stop();
    }

    const lists = seedFresh(harness, first.dataDir, limit.rps);
    const service = await startOn(harness, 'redeem-claim', first.dataDir);
    try {
      const load = await measureLoad(harness, service.server, {
        label: 'redeem-claim',
        warmupPlan: { kind: 'redeem-list', file: lists.warmup, once: true },
        plan: { kind: 'redeem-list', file: lists.measured, once: true },
        expectStatus: [200],
      });
      harness.progress(`  service: ${describeLoad(load)}`);
      if (load.exhausted) harness.progress('  note: the fresh ids ran out before the run ended');
      return outcome({ name: 'redeem-claim', target: { op: '>=', value: 0.5 } }, service, {
        limit,
        load,
        answer,
        freshIds: lists.count,
      });
    } finally {
      await service.child.stop();
    }
  },
};

function seedFresh(harness: Harness, dataDir: string, limitRps: number) {
  const { warmupS, durationS } = harness.options;
  const warmupCount = Math.ceil(limitRps * HEADROOM * warmupS);
  const measuredCount = Math.ceil(limitRps * HEADROOM * durationS);
  const started = performance.now();
  const db = new SeedDatabase(dataDir);
  let pids: string[];
  try {
    pids = db.addPayments(warmupCount + measuredCount, warmupCount + measuredCount);
  } finally {
    db.close();
  }
  const seconds = (performance.now() - started) / 1000;
  harness.progress(`  seeded ${pids.length.toLocaleString('en-US')} fresh paid ids in ${seconds.toFixed(1)} s`);
  return {
    count: pids.length,
    warmup: harness.listFile('claim-warmup', pids.slice(0, warmupCount)),
    measured: harness.listFile('claim-measured', pids.slice(warmupCount)),
  };
}
