import type { Harness, ServiceProcess } from '../harness.js';
import {
  type Answer,
  describeLoad,
  measureBareHono,
  measureLoad,
  probe,
  type ProbeRequest,
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
 * The common shape of an HTTP scenario: probe the service for the answer
 * the scenario produces, measure a bare hono route answering exactly that,
 * then measure the service driven the same way; the ratio is service over
 * limit.
 */
export async function compareWithBareHono(
  harness: Harness,
  service: ServiceProcess,
  spec: HttpComparison,
): Promise<ScenarioOutcome> {
  const answer = await probe(service.publicUrl, spec.probe);
  const limit = await measureBareHono(harness, spec.route, answer, {
    label: spec.name,
    plan: spec.plan,
    ...(spec.warmupAmount === undefined ? {} : { warmupAmount: spec.warmupAmount }),
  });
  const load = await measureService(harness, service, spec);
  return outcome(spec, service, { limit, load, answer });
}

export async function measureService(
  harness: Harness,
  service: ServiceProcess,
  spec: Pick<HttpComparison, 'name' | 'plan' | 'expectStatus' | 'warmupAmount'>,
): Promise<LoadResult> {
  const load = await measureLoad(harness, service.server, {
    label: spec.name,
    plan: spec.plan,
    expectStatus: spec.expectStatus,
    ...(spec.warmupAmount === undefined ? {} : { warmupAmount: spec.warmupAmount }),
  });
  harness.progress(`  service: ${describeLoad(load)}`);
  return load;
}

export function outcome(
  spec: Pick<HttpComparison, 'name' | 'target'>,
  service: ServiceProcess,
  measured: { limit: LoadResult; load: LoadResult; answer: Answer } & Record<string, unknown>,
): ScenarioOutcome {
  const { limit, load } = measured;
  const row = makeRow({
    name: spec.name,
    target: spec.target,
    load: { ...load, errors: errorsOf(load) },
    limit: 'bare hono req/s',
    limitValue: limit.rps,
    ratio: load.rps / limit.rps,
    rssBytes: service.child.rssBytes(),
  });
  return { row, details: measured };
}
