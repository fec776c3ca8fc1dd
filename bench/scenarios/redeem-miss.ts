import type { Harness } from '../harness.js';
import { randomPid } from '../request-plans.js';
import type { Scenario } from '../scenario.js';
import { compareWithBareHono } from './http-comparison.js';
import { basePayments, seededService } from './seeded-service.js';

/**
 * Redeems of random payment ids nobody paid: the Bloom filter answers 404
 * without touching SQLite (false positives, 0.1 % at the default size, do
 * one point lookup).
 */
export const redeemMiss: Scenario = {
  name: 'redeem-miss',
  async run(harness: Harness) {
    const { service } = await seededService(harness, 'redeem-miss', (db) => {
      db.addPayments(basePayments(harness));
    });
    try {
      return await compareWithBareHono(harness, service, {
        name: 'redeem-miss',
        target: { op: '>=', value: 0.8 },
        route: { method: 'POST', path: '/api/v1/redeem' },
        probe: redeemRequest(randomPid()),
        plan: { kind: 'redeem-random' },
        expectStatus: [404],
      });
    } finally {
      await service.child.stop();
    }
  },
};

export function redeemRequest(pid: string) {
  return { method: 'POST', path: '/api/v1/redeem', body: { pid } } as const;
}
