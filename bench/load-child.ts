import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';

import autocannon from 'autocannon';

import { LatencyRecorder } from './latency-recorder.js';
import { planRequests, type RequestPlan } from './request-plans.js';

/**
 * The load generator: autocannon in a process of its own, so that it never
 * shares a thread with the server it measures. argv[2] names a JSON file
 * holding a LoadJob; the LoadResult is printed as one JSON line on stdout.
 */

export type LoadJob = {
  /** Shown in progress lines. */
  label: string;
  /** Origin of the server, e.g. `http://127.0.0.1:8080`. */
  url: string;
  connections: number;
  /** Run for this long... */
  durationS?: number;
  /** ...or until this many requests have been answered. */
  amount?: number;
  /** Requests per second per connection; unlimited when absent. */
  connectionRate?: number;
  /** Statuses that count as success; any other is an error. */
  expectStatus: number[];
  plan: RequestPlan;
};

export type LoadResult = {
  /** Responses counted (all statuses). */
  requests: number;
  seconds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  statusCounts: Record<string, number>;
  /** Responses whose status was not expected. */
  unexpected: number;
  /** Socket errors and timeouts. */
  socketErrors: number;
  /** The plan's `once` list ran out before the run would have ended. */
  exhausted: boolean;
  /** CPU the load generator itself used, in seconds. */
  generatorCpuS: number;
  /** CPU the server used during the run, in seconds; added by the runner. */
  serverCpuS?: number;
  /** The same per counted response, in microseconds; added by the runner. */
  serverCpuUsPerRequest?: number;
  /** The same for the server's main thread alone. */
  serverMainThreadCpuUsPerRequest?: number;
};

/**
 * The load generator stands in for clients on other machines. At the
 * service's default priority it would take CPU from the service's worker
 * threads, which run at nice 10 so that the main thread wins a contended
 * core; at the same nice as they, it shares a core with them evenly.
 */
const LOAD_GENERATOR_NICE = 10;

setPriority(LOAD_GENERATOR_NICE);
const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadJob;
const planned = planRequests(job.plan, job.url);
const expected = new Set(job.expectStatus);
const latencies = new LatencyRecorder();
const statusCounts: Record<string, number> = {};
let unexpected = 0;
let counting = true;
let lastResponseAt = 0;

const startedAt = performance.now();
const startedCpu = process.cpuUsage();
const instance = autocannon(
  {
    url: job.url,
    connections: job.connections,
    ...(job.amount ? { amount: job.amount } : { duration: job.durationS ?? 10 }),
    ...(job.connectionRate ? { connectionRate: job.connectionRate } : {}),
    timeout: 10,
    // autocannon notices the end of a run at its next sample; sample often.
    sampleInt: 100,
    requests: planned.requests,
  },
  (err, result) => {
    if (err) throw err;
    process.stdout.write(`${JSON.stringify(summarize(result))}\n`);
    process.exit(0);
  },
);

instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
  if (!counting) return;
  if (planned.exhausted()) {
    counting = false;
    instance.stop();
    return;
  }
  lastResponseAt = performance.now();
  latencies.record(ms);
  statusCounts[status] = (statusCounts[status] ?? 0) + 1;
  if (!expected.has(status)) unexpected++;
});

if (process.stderr.isTTY) {
  let seconds = 0;
  instance.on('tick', ({ counter }: { counter: number }) => {
    seconds++;
    process.stderr.write(`\r    ${job.label}: ${seconds} s, ${counter} responses in the last second   `);
  });
}

function summarize(result: autocannon.Result): LoadResult {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  const seconds = Math.max(1e-3, (lastResponseAt - startedAt) / 1000);
  return {
    requests: latencies.count,
    seconds,
    rps: latencies.count / seconds,
    p50_ms: latencies.percentile(0.5),
    p99_ms: latencies.percentile(0.99),
    statusCounts,
    unexpected,
    socketErrors: result.errors,
    exhausted: !counting,
    generatorCpuS: cpuSecondsSince(startedCpu),
  };
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
}
