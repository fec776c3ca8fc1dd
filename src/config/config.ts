import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';

import { ConfigError } from '../errors.js';

/**
 * Every setting with its default. Units are in the names: `_ms`, `_s`,
 * `_atomic` (piconero), `_bytes`. Each key can be overridden by the
 * environment as `STRONGHOLD_` followed by the key in upper case.
 */
export const DEFAULTS = {
  data_dir: './data',
  network: 'mainnet',
  public_listen: '127.0.0.1:8080',
  internal_listen: '127.0.0.1:8081',
  wallet_rpc_url: 'http://127.0.0.1:18082',
  wallet_rpc_timeout_ms: 10_000,
  primary_address: '',
  min_confirmations: 10,
  min_payment_atomic: '10000000000',
  start_height: 0,
  poll_interval_ms: 5_000,
  max_backoff_ms: 60_000,
  ready_max_lag_ms: 120_000,
  workers: Math.max(1, availableParallelism() - 1),
  log_level: 'info',
  bloom_expected_items: 1_000_000,
  bloom_false_positive_rate: 0.001,
  cache_max_entries: 100_000,
  secret_file: '',
  body_limit_bytes: 16_384,
  max_connections: 4_096,
  headers_timeout_ms: 10_000,
  request_timeout_ms: 30_000,
  outbound_proxy: '',
  tor_only: false,
  signature_window_s: 300,
  invoice_expiry_s: 3_600,
  webhook_timeout_ms: 15_000,
  retention_days: 90,
  webhook_retry_first_delay_ms: 10_000,
  merchant_requests_in_flight: 4,
} as const;

const listenAddress = z
  .string()
  .regex(/^(unix:\/.+|[^\s:]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})$/, {
    message: 'must be host:port or unix:/absolute/path.sock',
  })
  .refine((v) => v.startsWith('unix:') || Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, {
    message: 'port must be from 0 to 65535',
  });

const atomicAmount = z
  .string()
  .regex(/^(0|[1-9]\d{0,19})$/, { message: 'must be a decimal string of atomic units' });

// Strings from the environment must be whole decimal numbers: coercing with
// Number() would read an empty STRONGHOLD_MIN_CONFIRMATIONS as 0.
const int = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
    z.number().int().min(min).max(max),
  );

const schema = z
  .object({
    data_dir: z.string().min(1),
    network: z.enum(['mainnet', 'stagenet', 'testnet']),
    public_listen: listenAddress,
    internal_listen: listenAddress,
    wallet_rpc_url: z.string().url().regex(/^https?:\/\//, { message: 'must be http(s)' }),
    wallet_rpc_timeout_ms: int(100, 600_000),
    primary_address: z.string(),
    min_confirmations: int(0, 1_000),
    min_payment_atomic: atomicAmount,
    start_height: int(0, 100_000_000),
    poll_interval_ms: int(50, 3_600_000),
    max_backoff_ms: int(100, 3_600_000),
    ready_max_lag_ms: int(1_000, 86_400_000),
    workers: int(1, 1_024),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    bloom_expected_items: int(1_000, 1_000_000_000),
    bloom_false_positive_rate: z.coerce.number().gt(0).lt(0.5),
    cache_max_entries: int(0, 100_000_000),
    secret_file: z.string(),
    body_limit_bytes: int(256, 10_485_760),
    max_connections: int(1, 1_000_000),
    headers_timeout_ms: int(100, 600_000),
    request_timeout_ms: int(100, 600_000),
    outbound_proxy: z
      .string()
      .regex(/^(|socks5h?:\/\/[^\s/]+:\d{1,5}\/?)$/, {
        message: 'must be empty or socks5h://host:port',
      }),
    tor_only: z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform(
      (v) => v === true || v === 'true' || v === '1',
    ),
    signature_window_s: int(1, 86_400),
    invoice_expiry_s: int(60, 30 * 86_400),
    webhook_timeout_ms: int(100, 600_000),
    retention_days: int(1, 36_500),
    webhook_retry_first_delay_ms: int(10, 3_600_000),
    merchant_requests_in_flight: int(1, 10_000),
  })
  .strict();

export type Config = Omit<z.output<typeof schema>, 'min_payment_atomic'> & {
  min_payment_atomic: bigint;
};

export type ConfigInput = Partial<Record<keyof typeof DEFAULTS, unknown>>;

const KEYS = Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[];

/**
 * Builds the configuration from defaults, then the file, then the
 * environment, and validates the result once. Errors name the setting.
 */
export function loadConfig(options: {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigInput;
}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.STRONGHOLD_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  rejectUnknownKeys(fromFile, file ?? '');

  rejectUnknownEnv(env);

  const merged: Record<string, unknown> = { ...DEFAULTS, ...fromFile };
  for (const key of KEYS) {
    const value = env[`STRONGHOLD_${key.toUpperCase()}`];
    if (value !== undefined) merged[key] = value;
  }
  Object.assign(merged, options.overrides ?? {});
  if (typeof merged.min_payment_atomic === 'number') {
    merged.min_payment_atomic = String(merged.min_payment_atomic);
  }

  return interpret(merged);
}

function interpret(merged: Record<string, unknown>): Config {
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    throw new ConfigError(key, `${describe(key)} ${issue.message}`);
  }

  const config = { ...parsed.data, min_payment_atomic: BigInt(parsed.data.min_payment_atomic) };
  config.data_dir = resolve(config.data_dir);
  if (config.secret_file === '') config.secret_file = resolve(config.data_dir, 'secret.key');
  return config;
}

function describe(key: string): string {
  return `setting "${key}" (env STRONGHOLD_${key.toUpperCase()}):`;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('config', `config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('config', `config file ${file} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

function rejectUnknownKeys(values: Record<string, unknown>, file: string): void {
  for (const key of Object.keys(values)) {
    if (key in DEFAULTS) continue;
    const hint = closestKey(key);
    const suffix = hint ? `; did you mean "${hint}"?` : '';
    throw new ConfigError(key, `unknown setting "${key}" in ${file}${suffix}`);
  }
}

/** A misspelled STRONGHOLD_ variable would otherwise be ignored without a word. */
function rejectUnknownEnv(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env)) {
    if (!name.startsWith('STRONGHOLD_') || name === 'STRONGHOLD_CONFIG') continue;
    const key = name.slice('STRONGHOLD_'.length).toLowerCase();
    if (key in DEFAULTS) continue;
    const hint = closestKey(key);
    const suffix = hint ? `; did you mean STRONGHOLD_${hint.toUpperCase()}?` : '';
    throw new ConfigError(key, `unknown environment variable ${name}${suffix}`);
  }
}

function closestKey(key: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of KEYS) {
    const distance = editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** A parsed listener address: TCP host and port, or a unix socket path. */
export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseListen(value: string): ListenAddress {
  if (value.startsWith('unix:')) return { kind: 'unix', path: value.slice(5) };
  const at = value.lastIndexOf(':');
  const host = value.slice(0, at).replace(/^\[|\]$/g, '');
  return { kind: 'tcp', host, port: Number(value.slice(at + 1)) };
}
