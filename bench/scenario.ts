import type { Harness } from './harness.js';
import type { LoadResult } from './load-child.js';
import type { ScenarioName } from './options.js';

/** How a scenario's ratio must compare with its target value. */
export type Target = { op: '>=' | '<='; value: number };

/** One line of latest.json and of the printed table. */
export type ScenarioRow = {
  name: ScenarioName;
  rps: number;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
  /** What the ratio divides by, with its unit. */
  limit: string;
  limit_value: number;
  ratio: number;
  target: string;
  met: boolean;
  /** The service's resident set size at the end of the scenario. */
  rss_mb: number;
};

export type ScenarioOutcome = {
  row: ScenarioRow;
  /** Everything else measured, for the per-scenario result file. */
  details: Record<string, unknown>;
};

export type Scenario = {
  name: ScenarioName;
  run(harness: Harness): Promise<ScenarioOutcome>;
};

export function targetText(target: Target): string {
  return `ratio ${target.op} ${target.value}`;
}

export function meets(ratio: number, target: Target): boolean {
  if (!Number.isFinite(ratio)) return false;
  return target.op === '>=' ? ratio >= target.value : ratio <= target.value;
}

/** Failed requests as the table counts them: unexpected statuses plus socket errors. */
export function errorsOf(load: LoadResult): number {
  return load.unexpected + load.socketErrors;
}

export type RowInput = {
  name: ScenarioName;
  target: Target;
  load: Pick<LoadResult, 'rps' | 'p50_ms' | 'p99_ms'> & { errors: number };
  limit: string;
  limitValue: number;
  ratio: number;
  rssBytes: number;
};

export function makeRow(input: RowInput): ScenarioRow {
  const { load, target } = input;
  return {
    name: input.name,
    rps: round(load.rps, 0),
    p50_ms: nullable(load.p50_ms),
    p99_ms: nullable(load.p99_ms),
    errors: load.errors,
    limit: input.limit,
    limit_value: round(input.limitValue, 3),
    ratio: round(input.ratio, 3),
    target: targetText(target),
    met: meets(input.ratio, target),
    rss_mb: round(input.rssBytes / 1_048_576, 1),
  };
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function nullable(ms: number | null): number | null {
  return ms === null || Number.isNaN(ms) ? null : round(ms, 3);
}
