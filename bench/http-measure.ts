import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

import type { Child } from './child-process.js';
import type { Harness } from './harness.js';
import type { LimitRoute } from './limit-server.js';
import type { LoadJob, LoadResult } from './load-child.js';
import type { RequestPlan } from './request-plans.js';

/** A status and JSON body the service answered, for the limit server to repeat. */
export type Answer = { status: number; body: unknown };

export type ProbeRequest = { method: 'GET' | 'POST'; path: string; body?: unknown };

/** Sends one request and returns the answer, so that the limit can answer the same bytes. */
export async function probe(baseUrl: string, request: ProbeRequest): Promise<Answer> {
  const response = await fetch(new URL(request.path, baseUrl), {
    method: request.method,
    headers: request.body === undefined ? {} : { 'content-type': 'application/json' },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
  return { status: response.status, body: await response.json() };
}

/** A load run as every scenario makes it, before the target is known. */
export type LoadSpec = Omit<LoadJob, 'url' | 'durationS' | 'connections'> & {
  connections?: number;
  durationS?: number;
  /** What the warm-up sends, when it must not be the measured plan (one-use ids). */
  warmupPlan?: RequestPlan;
  /**
   * Requests the warm-up sends instead of running for the warm-up time: one
   * pass over a set of ids, so that the measured run sees a warm cache.
   */
  warmupAmount?: number;
};

/** Warms the server up, then measures; both runs drive it the same way. */
export async function measureLoad(harness: Harness, server: Server, spec: LoadSpec): Promise<LoadResult> {
  await warmUp(harness, server, spec);
  return measureOnce(harness, server, spec);
}

/** The warm-up measureLoad gives a server before it measures; none in --quick. */
export async function warmUp(harness: Harness, server: Server, spec: LoadSpec): Promise<void> {
  const { options } = harness;
  const job = jobOf(harness, server, spec);
  const warmup = { ...job, label: `${spec.label} warm-up`, plan: spec.warmupPlan ?? job.plan };
  if (options.warmupS === 0) {
    // --quick: no warm-up of any kind.
  } else if (spec.warmupAmount !== undefined) {
    // autocannon spreads an amount over the connections and needs one each.
    await harness.drive({ ...warmup, amount: Math.max(spec.warmupAmount, job.connections) });
  } else if (!job.amount) {
    await harness.drive({ ...warmup, durationS: options.warmupS });
  }
}

/** One measured run, without a warm-up. */
export function measureOnce(harness: Harness, server: Server, spec: LoadSpec): Promise<LoadResult> {
  return harness.drive(jobOf(harness, server, spec), server.child);
}

function jobOf(harness: Harness, server: Server, spec: LoadSpec): LoadJob {
  const { warmupPlan: _plan, warmupAmount: _amount, ...rest } = spec;
  return {
    ...rest,
    url: server.url,
    connections: spec.connections ?? harness.options.connections,
    durationS: spec.durationS ?? harness.options.durationS,
  };
}

/** Where a load run goes: a server child and its origin. */
export type Server = { url: string; child: Child };

/**
 * The bare-hono limit for an HTTP scenario: a one-route hono server in its
 * own process answering `answer`, driven by the same plan as the service.
 */
export async function measureBareHono(
  harness: Harness,
  route: Omit<LimitRoute, 'status' | 'body'>,
  answer: Answer,
  spec: { label: string; plan: RequestPlan; warmupAmount?: number },
): Promise<LoadResult> {
  const server = await harness.startLimitServer({ ...route, ...answer });
  try {
    harness.progress(`  limit: bare hono ${route.method} ${route.path} answering ${answer.status}`);
    const result = await measureLoad(harness, server, {
      ...spec,
      label: `${spec.label} (bare hono)`,
      expectStatus: [answer.status],
    });
    harness.progress(`  limit: ${describeLoad(result)}`);
    return result;
  } finally {
    await server.child.stop();
  }
}

export function describeLoad(result: LoadResult): string {
  const errors = result.unexpected + result.socketErrors;
  const main = result.serverMainThreadCpuUsPerRequest;
  const cpu =
    result.serverCpuUsPerRequest === undefined
      ? ''
      : `, ${Math.round(result.serverCpuUsPerRequest)} µs CPU/req` +
        (main === undefined ? '' : ` (main thread ${Math.round(main)})`);
  const generator = Math.round((result.generatorCpuS * 1e6) / Math.max(1, result.requests));
  return (
    `${Math.round(result.rps).toLocaleString('en-US')} req/s, ` +
    `p50 ${result.p50_ms.toFixed(2)} ms, p99 ${result.p99_ms.toFixed(2)} ms, ${errors} errors${cpu}, ` +
    `load generator ${generator} µs/req`
  );
}

/** An http URL on 127.0.0.1 where nothing listens: the port was just released. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
