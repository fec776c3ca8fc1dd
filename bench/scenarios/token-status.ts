import type { Harness } from '../harness.js';
import type { Scenario } from '../scenario.js';
import { compareWithBareHono } from './http-comparison.js';
import { basePayments, repeatSetSize, seededService } from './seeded-service.js';

/** Introspection of known service tokens: the status cache after the first pass. */
export const tokenStatus: Scenario = {
  name: 'token-status',
  async run(harness: Harness) {
    const { service, seeded: tokens } = await seededService(harness, 'token-status', (db) =>
      db.claim(db.addPayments(basePayments(harness), repeatSetSize(harness))),
    );
    try {
      return await compareWithBareHono(harness, service, {
        name: 'token-status',
        target: { op: '>=', value: 0.6 },
        route: { method: 'GET', path: '/api/v1/token/:token' },
        probe: { method: 'GET', path: `/api/v1/token/${tokens[0]!}` },
        plan: { kind: 'token-list', file: harness.listFile('tokens', tokens) },
        expectStatus: [200],
        warmupAmount: repeatSetSize(harness),
      });
    } finally {
      await service.child.stop();
    }
  },
};
