import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Machine } from './machine.js';
import type { BenchOptions } from './options.js';
import type { ScenarioOutcome, ScenarioRow } from './scenario.js';

/**
 * Writes `<date>-<scenario>.json` for each scenario (the row, every figure
 * behind it, the machine and the options) and rewrites `latest.json`.
 */
export function writeResults(
  options: BenchOptions,
  machine: Machine,
  outcomes: readonly ScenarioOutcome[],
): string[] {
  mkdirSync(options.outDir, { recursive: true });
  const stamp = machine.date.replace(/[:.]/g, '-');
  const written: string[] = [];
  for (const { row, details } of outcomes) {
    const file = join(options.outDir, `${stamp}-${row.name}.json`);
    writeJson(file, { machine, options: describeOptions(options), row, details });
    written.push(file);
  }
  const latest = join(options.outDir, 'latest.json');
  writeJson(latest, { machine, options: describeOptions(options), scenarios: outcomes.map((o) => o.row) });
  written.push(latest);
  return written;
}

function describeOptions(options: BenchOptions) {
  const { quick, durationS, warmupS, connections, workers, cacheEntries } = options;
  return { quick, duration_s: durationS, warmup_s: warmupS, connections, workers, cache_entries: cacheEntries };
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** The markdown table printed at the end of a run. */
export function markdownTable(rows: readonly ScenarioRow[]): string {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'limit', 'limit value', 'ratio', 'target', 'met', 'RSS MB'];
  const lines = rows.map((row) => [
    row.name,
    integer(row.rps),
    ms(row.p50_ms),
    ms(row.p99_ms),
    String(row.errors),
    row.limit,
    row.limit_value >= 100 ? integer(row.limit_value) : row.limit_value.toFixed(2),
    row.ratio.toFixed(2),
    row.target,
    row.met ? 'yes' : '**no**',
    row.rss_mb.toFixed(0),
  ]);
  return [header, header.map((_, i) => (i === 0 || i === 5 || i === 8 ? '---' : '---:')), ...lines]
    .map((cells) => `| ${cells.join(' | ')} |`)
    .join('\n');
}

function integer(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function ms(value: number | null): string {
  return value === null ? '–' : value.toFixed(2);
}
