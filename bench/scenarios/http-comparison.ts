import type { Harness, ServiceProcess } from '../harness.js';
import {
  type Answer,
  describeLoad,
  measureOnce,
  probe,
  type ProbeRequest,
  warmUp,
} from '../http-measure.js';
import type { LimitRoute } from '../limit-server.js';
import type { LoadResult } from '../load-child.js';
import type { ScenarioName } from '../options.js';
import type { RequestPlan } from '../request-plans.js';
import { errorsOf, makeRow, type ScenarioOutcome, type Target } from '../scenario.js';

export type HttpComparison = {
  name: ScenarioName;
  target: Target;
  route: Omit<LimitRoute, 'status' | 'body'>;
  /** A request whose answer is the one the scenario expects; the limit repeats it. */
  probe: ProbeRequest;
  plan: RequestPlan;
  expectStatus: number[];
  /** See LoadSpec.warmupAmount. */
  warmupAmount?: number;
};

/**
 * Rounds of limit-then-service a comparison measures. On this shared
 * two-core machine one limit run and one service run seconds apart gave
 * ratios ±0.1 apart from run to run: a neighbour's load lands on one of
 * them and not the other. Alternating three times and keeping the round
 * with the median ratio leaves out a round that such a burst spoiled.
 */
const ROUNDS = 3;

/** One limit run and the service run right after it. */
export type Round = { limit: LoadResult; load: LoadResult; ratio: number };

/**
 * The common shape of an HTTP scenario: probe the service for the answer
 * the scenario produces, start a bare hono route answering exactly that,
 * warm both up, then measure them in turns (ROUNDS rounds, one in --quick).
 * The row reports the round with the median ratio, service over limit, and
 * the errors of every round.
 */
export async function compareWithBareHono(
  harness: Harness,
  service: ServiceProcess,
  spec: HttpComparison,
): Promise<ScenarioOutcome> {
  const answer = await probe(service.publicUrl, spec.probe);
  const limitServer = await harness.startLimitServer({ ...spec.route, ...answer });
  const warmupAmount = spec.warmupAmount === undefined ? {} : { warmupAmount: spec.warmupAmount };
  const limitSpec = {
    label: `${spec.name} (bare hono)`,
    plan: spec.plan,
    expectStatus: [answer.status],
    ...warmupAmount,
  };
  const serviceSpec = {
    label: spec.name,
    plan: spec.plan,
    expectStatus: spec.expectStatus,
    ...warmupAmount,
  };
  const rounds: Round[] = [];
  try {
    const { method, path } = spec.route;
    harness.progress(`  limit: bare hono ${method} ${path} answering ${answer.status}`);
    await warmUp(harness, limitServer, limitSpec);
    await warmUp(harness, service.server, serviceSpec);
    const count = harness.options.quick ? 1 : ROUNDS;
    for (let i = 1; i <= count; i++) {
      const limit = await measureOnce(harness, limitServer, limitSpec);
      const load = await measureOnce(harness, service.server, serviceSpec);
      const ratio = load.rps / limit.rps;
      harness.progress(`  round ${i}/${count}, ratio ${ratio.toFixed(3)}`);
      harness.progress(`    limit:   ${describeLoad(limit)}`);
      harness.progress(`    service: ${describeLoad(load)}`);
      rounds.push({ limit, load, ratio });
    }
  } finally {
    await limitServer.child.stop();
  }
  const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[(rounds.length - 1) >> 1]!;
  const errors = rounds.reduce((sum, round) => sum + errorsOf(round.load), 0);
  return outcome(spec, service, { limit: median.limit, load: median.load, answer, rounds }, errors);
}

/** The row of an HTTP comparison; `errors` defaults to the load run's. */
export function outcome(
  spec: Pick<HttpComparison, 'name' | 'target'>,
  service: ServiceProcess,
  measured: { limit: LoadResult; load: LoadResult; answer: Answer } & Record<string, unknown>,
  errors = errorsOf(measured.load),
): ScenarioOutcome {
  const { limit, load } = measured;
  const row = makeRow({
    name: spec.name,
    target: spec.target,
    load: { ...load, errors },
    limit: 'bare hono req/s',
    limitValue: limit.rps,
    ratio: load.rps / limit.rps,
    rssBytes: service.child.rssBytes(),
  });
  return { row, details: measured };
}
