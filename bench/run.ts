import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { Harness } from './harness.js';
import { describeMachine } from './machine.js';
import { type BenchOptions, parseBenchOptions, USAGE, UsageError } from './options.js';
import { markdownTable, writeResults } from './report.js';
import type { ScenarioOutcome } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

/**
 * `npm run bench`: runs the chosen scenarios one after another, each against
 * a service started for it, prints a markdown table on stdout and writes the
 * result files. Progress goes to stderr. Exits 2 on a bad command line and
 * 1 when a scenario could not be run at all; a missed target is a result,
 * not a failure.
 */

/** The project root: this file runs from dist/bench/. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseBenchOptions(argv, ROOT);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  return runBench(options);
}

async function runBench(options: BenchOptions): Promise<number> {
  const machine = describeMachine();
  const harness = new Harness(options);
  const stopNow = () => {
    harness.killChildren();
    process.exit(130);
  };
  process.once('SIGINT', stopNow);
  process.once('SIGTERM', stopNow);

  harness.progress(
    `stronghold bench${options.quick ? ' (quick)' : ''}: ${options.scenarios.length} scenarios, ` +
      `${options.durationS} s runs, ${options.connections} connections, ${options.workers} workers; ` +
      `${machine.cpu}, ${machine.cores} cores, load average ${machine.load_average.join(' ')}`,
  );
  const started = performance.now();
  const outcomes: ScenarioOutcome[] = [];
  const failures: string[] = [];
  try {
    for (const [index, name] of options.scenarios.entries()) {
      harness.progress(`[${index + 1}/${options.scenarios.length}] ${name}`);
      const scenarioStarted = performance.now();
      try {
        const outcome = await SCENARIOS[name].run(harness);
        outcomes.push(outcome);
        const { ratio, target, met } = outcome.row;
        harness.progress(
          `  ratio ${ratio.toFixed(3)}, target ${target}: ${met ? 'met' : 'MISSED'} ` +
            `(${seconds(scenarioStarted)} s)`,
        );
      } catch (err) {
        failures.push(name);
        harness.progress(`  ${name} failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
  } finally {
    await harness.close();
  }

  const files = writeResults(options, machine, outcomes);
  process.stdout.write(`${markdownTable(outcomes.map((o) => o.row))}\n`);
  harness.progress(`done in ${seconds(started)} s; results in ${files.at(-1)}`);
  if (options.cpuProfDir) harness.progress(`service CPU profiles in ${options.cpuProfDir}`);
  if (failures.length > 0) {
    harness.progress(`scenarios that could not run: ${failures.join(', ')}`);
    return 1;
  }
  return 0;
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

process.exitCode = await main(process.argv.slice(2));
