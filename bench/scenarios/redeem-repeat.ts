import type { Harness } from '../harness.js';
import type { Scenario } from '../scenario.js';
import { compareWithBareHono } from './http-comparison.js';
import { redeemRequest } from './redeem-miss.js';
import { basePayments, repeatSetSize, seededService } from './seeded-service.js';

/**
 * Redeems of payment ids that were claimed already: after the first pass
 * the answer (same token, already_claimed) comes from the LRU cache, as
 * long as the set fits in cache_max_entries.
 */
export const redeemRepeat: Scenario = {
  name: 'redeem-repeat',
  async run(harness: Harness) {
    const { service, seeded: pids } = await seededService(harness, 'redeem-repeat', (db) => {
      const kept = db.addPayments(basePayments(harness), repeatSetSize(harness));
      db.claim(kept);
      return kept;
    });
    try {
      return await compareWithBareHono(harness, service, {
        name: 'redeem-repeat',
        target: { op: '>=', value: 0.6 },
        route: { method: 'POST', path: '/api/v1/redeem' },
        probe: redeemRequest(pids[0]!),
        plan: { kind: 'redeem-list', file: harness.listFile('repeat-pids', pids), once: false },
        expectStatus: [200],
        warmupAmount: repeatSetSize(harness),
      });
    } finally {
      await service.child.stop();
    }
  },
};
