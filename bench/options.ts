import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { DEFAULTS } from '../src/config/config.js';

/** Every scenario, in the order a full run takes them. */
export const SCENARIO_NAMES = [
  'redeem-miss',
  'redeem-repeat',
  'redeem-claim',
  'token-status',
  'invoice-create',
  'mixed-flood',
  'ingest',
  'scale',
  'spray-memory',
] as const;

/**
 * Scenarios a full run adds after the others but --quick leaves out unless
 * named: `onion` starts a private Tor network, which alone takes longer
 * than a quick run may.
 */
export const SLOW_SCENARIO_NAMES = ['onion'] as const;

const ALL_SCENARIO_NAMES = [...SCENARIO_NAMES, ...SLOW_SCENARIO_NAMES] as const;

export type ScenarioName = (typeof ALL_SCENARIO_NAMES)[number];

export type BenchOptions = {
  quick: boolean;
  scenarios: ScenarioName[];
  /** Seconds each measured load run lasts. */
  durationS: number;
  /** Seconds of load before each measured run, to let the JIT settle (none in --quick). */
  warmupS: number;
  connections: number;
  /** The service's worker threads (config `workers`). */
  workers: number;
  /** The service's cache sizes (config `cache_max_entries`). */
  cacheEntries: number;
  /** Where service CPU profiles go; profiling is off when undefined. */
  cpuProfDir: string | undefined;
  /** Where the result files go. */
  outDir: string;
};

export const USAGE = `usage: npm run bench -- [flags]

  --quick               a smoke run in under a minute: small data, 0.5 s runs, no warm-up
  --scenario a,b        scenarios to run (default all; --quick leaves out ${SLOW_SCENARIO_NAMES.join(', ')}):
                        ${ALL_SCENARIO_NAMES.join(', ')}
  --duration SECONDS    length of each measured load run (default 10, quick 0.5)
  --connections N       concurrent connections of the load generator (default 50)
  --workers N           worker threads of the service (default ${DEFAULTS.workers})
  --cache-entries N     the service's cache_max_entries (default ${DEFAULTS.cache_max_entries})
  --cpu-prof            write V8 CPU profiles of every child (service, limit, load)
  --out DIR             where results go (default bench/results)
  --help                this text`;

/** A bad command line; the message names the flag and what it accepts. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const FLAGS = {
  quick: { type: 'boolean' },
  scenario: { type: 'string' },
  duration: { type: 'string' },
  connections: { type: 'string' },
  workers: { type: 'string' },
  'cache-entries': { type: 'string' },
  'cpu-prof': { type: 'boolean' },
  out: { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** Reads the command line; `undefined` means --help was asked for. */
export function parseBenchOptions(argv: string[], root: string): BenchOptions | undefined {
  const values = readFlags(argv);
  if (values.help) return undefined;

  const quick = values.quick ?? false;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    quick,
    scenarios: parseScenarios(values.scenario, quick),
    durationS: parseNumber('--duration', values.duration, 0.5, 3_600, quick ? 0.5 : 10),
    warmupS: quick ? 0 : 2,
    connections: parseInteger('--connections', values.connections, 1, 10_000, 50),
    workers: parseInteger('--workers', values.workers, 1, 1_024, DEFAULTS.workers),
    cacheEntries: parseInteger(
      '--cache-entries',
      values['cache-entries'],
      0,
      100_000_000,
      DEFAULTS.cache_max_entries,
    ),
    cpuProfDir: values['cpu-prof'] ? join(tmpdir(), `stronghold-bench-profiles-${stamp}`) : undefined,
    outDir: resolve(values.out ?? join(root, 'bench', 'results')),
  };
}

function readFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional.*$/s, '');
    throw new UsageError(`${message}\naccepted flags: ${Object.keys(FLAGS).map((f) => `--${f}`).join(' ')}`);
  }
}

function parseScenarios(value: string | undefined, quick: boolean): ScenarioName[] {
  if (value === undefined) return quick ? [...SCENARIO_NAMES] : [...ALL_SCENARIO_NAMES];
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new UsageError('--scenario needs at least one scenario name');
  for (const name of names) {
    if (!(ALL_SCENARIO_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`--scenario: unknown scenario "${name}"; known: ${ALL_SCENARIO_NAMES.join(', ')}`);
    }
  }
  // Run order is the documented one whatever order the flag lists them in.
  return ALL_SCENARIO_NAMES.filter((name) => names.includes(name));
}

function parseNumber(flag: string, value: string | undefined, min: number, max: number, fallback: number) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n < min || n > max) {
    throw new UsageError(`${flag} must be a number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

function parseInteger(flag: string, value: string | undefined, min: number, max: number, fallback: number) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}
