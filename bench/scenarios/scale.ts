import { performance } from 'node:perf_hooks';

import type { Harness } from '../harness.js';
import { describeLoad, measureLoad } from '../http-measure.js';
import type { LoadResult } from '../load-child.js';
import { errorsOf, makeRow, round, type Scenario } from '../scenario.js';
import { SeedDatabase } from '../seed-database.js';
import { startOn } from './seeded-service.js';

const FULL_SIZES = [10_000, 100_000, 1_000_000, 10_000_000];
const QUICK_SIZES = [10_000, 100_000];
/** A size whose seeding is projected to take longer than this is left out. */
const SEED_BUDGET_S = 600;
/** Claimed ids redeemed again and again; each pass after the first is answered from the cache. */
const REPEAT_SET = 1_000;

type SizeResult = {
  payments: number;
  seedS: number;
  startMs: number;
  rssMb: number;
  load: LoadResult;
};

/**
 * redeem-repeat on one data dir grown from 10^4 to 10^7 stored payments
 * (10^4 and 10^5 in --quick); the Bloom filter is sized for each size, as
 * an operator would. The ratio is p50 at the largest size over p50 at the
 * smallest. Seeding goes through PaymentStore, as the monitor writes; a
 * size it cannot reach within ten minutes is skipped and reported.
 */
export const scale: Scenario = {
  name: 'scale',
  async run(harness: Harness) {
    const store = new GrowingStore(harness);
    const results: SizeResult[] = [];
    const skipped: { payments: number; projectedSeedS: number }[] = [];

    for (const size of harness.options.quick ? QUICK_SIZES : FULL_SIZES) {
      const projected = store.projectedSeconds(size);
      if (projected > SEED_BUDGET_S) {
        skipped.push({ payments: size, projectedSeedS: Math.round(projected) });
        harness.progress(`  skipping ${size.toLocaleString('en-US')} payments: seeding would take about ${Math.round(projected)} s`);
        continue;
      }
      const seedS = store.growTo(size);
      harness.progress(`  ${size.toLocaleString('en-US')} payments stored (seeding took ${seedS.toFixed(1)} s)`);
      results.push(await measureSize(harness, store, size, seedS));
    }
    return outcomeOf(results, skipped);
  },
};

/**
 * The scenario's one data dir, grown size by size. The first growth also
 * claims the repeat set; each growth tells how fast seeding went, which
 * projects the next one.
 */
class GrowingStore {
  readonly dataDir: string;
  pidsFile = '';
  readonly #harness: Harness;
  #stored = 0;
  #rowsPerS = Number.POSITIVE_INFINITY;

  constructor(harness: Harness) {
    this.#harness = harness;
    this.dataDir = harness.dir('scale');
  }

  projectedSeconds(size: number): number {
    return (size - this.#stored) / this.#rowsPerS;
  }

  /** Seeds up to `size` payments; returns the seconds it took. */
  growTo(size: number): number {
    const missing = size - this.#stored;
    const started = performance.now();
    const db = new SeedDatabase(this.dataDir);
    try {
      const kept = db.addPayments(missing, this.pidsFile === '' ? REPEAT_SET : 0);
      if (this.pidsFile === '') {
        db.claim(kept);
        this.pidsFile = this.#harness.listFile('scale-pids', kept);
      }
    } finally {
      db.close();
    }
    const seconds = (performance.now() - started) / 1000;
    this.#stored = size;
    this.#rowsPerS = missing / seconds;
    return seconds;
  }
}

function outcomeOf(results: SizeResult[], skipped: { payments: number; projectedSeedS: number }[]) {
  const first = results[0]!;
  const last = results.at(-1)!;
  const row = makeRow({
    name: 'scale',
    target: { op: '<=', value: 1.5 },
    load: { ...last.load, errors: results.reduce((sum, r) => sum + errorsOf(r.load), 0) },
    limit: `redeem-repeat p50 at ${first.payments.toExponential(0)} (ms)`,
    limitValue: first.load.p50_ms,
    ratio: last.load.p50_ms / first.load.p50_ms,
    rssBytes: last.rssMb * 1_048_576,
  });
  return { row, details: { sizes: results, skipped, largest: last.payments } };
}

async function measureSize(
  harness: Harness,
  store: GrowingStore,
  size: number,
  seedS: number,
): Promise<SizeResult> {
  const service = await startOn(harness, `scale ${size}`, store.dataDir, {
    bloom_expected_items: Math.max(size, 1_000),
  });
  try {
    const load = await measureLoad(harness, service.server, {
      label: `scale ${size.toExponential(0)}`,
      plan: { kind: 'redeem-list', file: store.pidsFile, once: false },
      expectStatus: [200],
      // Several passes: every size starts a fresh service with a cold JIT.
      warmupAmount: REPEAT_SET * (harness.options.quick ? 1 : 5),
    });
    harness.progress(`  ${size.toExponential(0)}: start-up ${service.startMs} ms, ${describeLoad(load)}`);
    const rssMb = round(service.child.rssBytes() / 1_048_576, 1);
    return { payments: size, seedS: round(seedS, 1), startMs: service.startMs, rssMb, load };
  } finally {
    await service.child.stop();
  }
}
