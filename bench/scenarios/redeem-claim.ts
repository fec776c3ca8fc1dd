import { performance } from 'node:perf_hooks';

import type { Harness } from '../harness.js';
import { describeLoad, measureBareHono, measureLoad, probe } from '../http-measure.js';
import type { LoadResult } from '../load-child.js';
import { measureSqlite, type SqliteRates } from '../raw-limits.js';
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

    const floor = sqliteFloor(harness, limit);
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
        sqliteFloor: floor,
      });
    } finally {
      await service.child.stop();
    }
  },
};

/**
 * What SQLite alone spends on one claim here: a payment lookup, and an
 * insert into the tickets table and its random-key unique index inside a
 * batch as large as the group commit's. Next to bare hono's CPU per
 * request it bounds the ratio this scenario can reach on this machine:
 * hono's cost plus the floor cannot be under hono's cost over the ratio.
 */
function sqliteFloor(harness: Harness, limit: LoadResult) {
  const { quick } = harness.options;
  const rates: SqliteRates = measureSqlite(harness.dir('raw-claims'), quick ? 2_000 : 100_000, quick ? 0.1 : 1);
  const lookupUs = 1e6 / rates.pointLookupsPerS;
  const claimUs = 1e6 / rates.batchedClaimsPerS;
  const honoUs = limit.serverMainThreadCpuUsPerRequest;
  const bestRatio = honoUs === undefined ? undefined : honoUs / (honoUs + lookupUs + claimUs);
  harness.progress(
    `  SQLite floor: lookup ${lookupUs.toFixed(1)} µs + batched claim ${claimUs.toFixed(1)} µs per redeem` +
      (bestRatio === undefined ? '' : `; with hono's ${honoUs!.toFixed(1)} µs, a ratio of at most ${bestRatio.toFixed(2)}`),
  );
  return { lookupUs, claimUs, honoUs, bestRatio, rates };
}

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
