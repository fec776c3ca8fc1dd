import { performance } from 'node:perf_hooks';

import { quoteAmounts } from '../../src/monitor/wallet-rpc-client.js';

import type { Harness } from '../harness.js';
import { benchPrimaryAddress } from '../merchant.js';
import { measureSqlite, type SqliteRates } from '../raw-limits.js';
import { type RecordedAnswer, RecordedWalletRpc, recordAnswer } from '../recorded-wallet-rpc.js';
import { makeRow, type Scenario, type ScenarioOutcome, type Target } from '../scenario.js';

const TARGET: Target = { op: '>=', value: 0.5 };
const POLL_MS = 25;
/**
 * Backlogs ingested, each by a fresh service on a fresh data dir (one in
 * --quick); the row reports the median. Single runs of the same code took
 * from 1.5 to 3.2 s on one afternoon here.
 */
const RUNS = 3;

/** One fresh service catching up on the whole backlog. */
type IngestRun = { seconds: number; seen: number; startMs: number; rssBytes: number };

/**
 * The monitor catching up on a backlog: a fresh service whose wallet has
 * 100,000 confirmed incoming transfers (10,000 in --quick). Timed from just
 * before Service.start to the scan cursor reaching the wallet height, which
 * the monitor stores in the same transaction as the payments. The limit is
 * better-sqlite3 inserting the same number of payment rows in one
 * transaction, with nothing else around it.
 */
export const ingest: Scenario = {
  name: 'ingest',
  async run(harness: Harness) {
    const count = harness.options.quick ? 10_000 : 100_000;
    const sqlite = measureSqlite(harness.dir('raw-sqlite'), count, harness.options.quick ? 0.3 : 1);
    harness.progress(`  limit: raw ${describeRates(sqlite)}`);

    const answer = recordAnswer(count, benchPrimaryAddress());
    const reading = measureReading(answer, harness.options.quick ? 1 : 3);
    const bound = readingBound(count, reading, sqlite);
    const megabytes = (reading.bytes / 1e6).toFixed(0);
    const oneThreadS = (reading.seconds + bound.insertS).toFixed(2);
    harness.progress(
      `  floor: reading the wallet's answer (${megabytes} MB: quoting amounts, JSON.parse) ` +
        `${reading.seconds.toFixed(2)} s; with the raw insert's ${bound.insertS.toFixed(2)} s, ` +
        `one thread needs ${oneThreadS} s: a ratio of at most ${bound.ratio.toFixed(2)}`,
    );
    const rpc = await RecordedWalletRpc.start(answer);
    const runs: IngestRun[] = [];
    try {
      const total = harness.options.quick ? 1 : RUNS;
      for (let i = 1; i <= total; i++) {
        const run = await ingestOnce(harness, rpc.url, answer);
        const transfers = count.toLocaleString('en-US');
        harness.progress(`  run ${i}/${total}: ${transfers} transfers in ${run.seconds.toFixed(2)} s`);
        runs.push(run);
      }
    } finally {
      await rpc.close();
    }
    return outcomeOf(harness, count, runs, sqlite, { reading, bound });
  },
};

async function ingestOnce(harness: Harness, walletUrl: string, answer: RecordedAnswer): Promise<IngestRun> {
  const service = await harness.startService('ingest', {
    data_dir: harness.dir('ingest'),
    wallet_rpc_url: walletUrl,
    // As an operator sets it: the wallet's restore height, here its first
    // transfer's. From 0 the monitor would first cross two million empty
    // blocks in ranges that grow eightfold each, and then read the whole
    // backlog as one range.
    start_height: answer.firstHeight,
    wallet_rpc_timeout_ms: 300_000,
    poll_interval_ms: 1_000,
  });
  try {
    const done = await waitForScan(service.internalUrl, answer.height, 600_000);
    return {
      seconds: (done.at - service.startedAt) / 1000,
      seen: done.seen,
      startMs: service.startMs,
      rssBytes: service.child.rssBytes(),
    };
  } finally {
    await service.child.stop();
  }
}

function outcomeOf(
  harness: Harness,
  count: number,
  runs: IngestRun[],
  sqlite: SqliteRates,
  floor: { reading: Reading; bound: { insertS: number; ratio: number } },
): ScenarioOutcome {
  const median = [...runs].sort((a, b) => a.seconds - b.seconds)[(runs.length - 1) >> 1]!;
  const { seen, seconds } = median;
  const rowsPerS = count / seconds;
  // A transfer any run failed to record is an error, not only the median's.
  const errors = runs.reduce((sum, run) => sum + count - run.seen, 0);
  harness.progress(
    `  service (median run): ${count.toLocaleString('en-US')} transfers in ${seconds.toFixed(2)} s, ` +
      `${Math.round(rowsPerS).toLocaleString('en-US')} rows/s`,
  );
  const row = makeRow({
    name: 'ingest',
    target: TARGET,
    load: { rps: rowsPerS, p50_ms: Number.NaN, p99_ms: Number.NaN, errors },
    limit: 'raw batched insert rows/s',
    limitValue: sqlite.batchedInsertRowsPerS,
    ratio: rowsPerS / sqlite.batchedInsertRowsPerS,
    rssBytes: median.rssBytes,
  });
  const details = { transfers: count, seconds, startMs: median.startMs, seen, runs, sqlite, floor };
  return { row, details };
}

/** What reading the wallet's answer costs before anything is checked or stored. */
type Reading = { bytes: number; seconds: number };

/**
 * The fastest of `runs` readings of the answer the recorded wallet serves,
 * the way the wallet client reads it: amounts quoted (they may exceed 2⁵³),
 * then JSON.parse. Whatever thread does it, every transfer has to be read
 * before it can be stored.
 */
function measureReading(answer: RecordedAnswer, runs: number): Reading {
  const text = `{"id":0,"jsonrpc":"2.0","result":${JSON.stringify({ in: answer.transfers })}}`;
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    JSON.parse(quoteAmounts(text));
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return { bytes: Buffer.byteLength(text), seconds: best };
}

/**
 * The ratio a scan on one thread could reach if checking, tagging and the
 * payment policy were free: reading the answer, then the raw insert.
 */
function readingBound(count: number, reading: Reading, sqlite: SqliteRates) {
  const insertS = count / sqlite.batchedInsertRowsPerS;
  return { insertS, ratio: insertS / (reading.seconds + insertS) };
}

function describeRates(sqlite: SqliteRates): string {
  const n = (value: number) => Math.round(value).toLocaleString('en-US');
  return (
    `batched insert ${n(sqlite.batchedInsertRowsPerS)} rows/s ` +
    `(claims ${n(sqlite.claimTxPerS)} tx/s, ${n(sqlite.batchedClaimsPerS)}/s in batches, ` +
    `point lookups ${n(sqlite.pointLookupsPerS)}/s)`
  );
}

/**
 * Polls /metrics until the scan height reaches `height`. A scan is one
 * synchronous transaction, so a scrape queued behind it is answered the
 * moment it commits.
 */
async function waitForScan(internalUrl: string, height: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const text = await scrape(internalUrl);
    const at = Date.now();
    if (text === undefined) continue;
    if (metric(text, 'stronghold_monitor_scan_height') >= height) {
      return { at, seen: metric(text, 'stronghold_payments_ingested_total{result="seen"}') };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`the monitor did not reach height ${height} within ${timeoutMs} ms`);
}

/**
 * One scrape, or undefined when the service dropped it: a scrape that waits
 * longer than the listener's headers timeout behind a long scan transaction
 * is cut, and the next one is answered as soon as the scan has committed.
 */
async function scrape(internalUrl: string): Promise<string | undefined> {
  try {
    return await (await fetch(new URL('/metrics', internalUrl))).text();
  } catch {
    return undefined;
  }
}

function metric(text: string, name: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return 0;
}
