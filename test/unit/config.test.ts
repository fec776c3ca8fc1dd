import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { type Config, DEFAULTS, loadConfig, parseListen } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir } from '../support/temp-service.js';

function configFile(content: unknown): string {
  const file = join(tempDir(), 'stronghold.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}

describe('loadConfig', () => {
  it('refuses a misspelled STRONGHOLD_ environment variable with a hint', () => {
    const err = configErrorOf(() => loadConfig({ env: { STRONGHOLD_MIN_CONFIRMATION: '3' } }));

    expect(err.message).toContain('STRONGHOLD_MIN_CONFIRMATIONS');
  });

  it('returns the defaults when the environment sets nothing', () => {
    const config = loadConfig({ env: {} });

    expect(config).toEqual({
      ...DEFAULTS,
      data_dir: resolve(DEFAULTS.data_dir),
      min_payment_atomic: 10_000_000_000n,
      secret_file: resolve(DEFAULTS.data_dir, 'secret.key'),
    });
  });

  it('keeps a secret_file that was set instead of putting it in the data dir', () => {
    const config = loadConfig({ env: { STRONGHOLD_SECRET_FILE: '/etc/stronghold/secret' } });

    expect(config.secret_file).toBe('/etc/stronghold/secret');
  });

  const overrides: [string, string, keyof Config, unknown][] = [
    ['STRONGHOLD_DATA_DIR', '/var/lib/stronghold', 'data_dir', '/var/lib/stronghold'],
    ['STRONGHOLD_PUBLIC_LISTEN', '0.0.0.0:9000', 'public_listen', '0.0.0.0:9000'],
    [
      'STRONGHOLD_INTERNAL_LISTEN',
      'unix:/run/stronghold/internal.sock',
      'internal_listen',
      'unix:/run/stronghold/internal.sock',
    ],
    [
      'STRONGHOLD_WALLET_RPC_URL',
      'http://10.0.0.5:28088',
      'wallet_rpc_url',
      'http://10.0.0.5:28088',
    ],
    ['STRONGHOLD_MIN_CONFIRMATIONS', '3', 'min_confirmations', 3],
    [
      'STRONGHOLD_MIN_PAYMENT_ATOMIC',
      '18446744073709551615',
      'min_payment_atomic',
      18446744073709551615n,
    ],
    ['STRONGHOLD_START_HEIGHT', '3100000', 'start_height', 3_100_000],
    ['STRONGHOLD_POLL_INTERVAL_MS', '250', 'poll_interval_ms', 250],
    ['STRONGHOLD_WORKERS', '37', 'workers', 37],
    ['STRONGHOLD_LOG_LEVEL', 'debug', 'log_level', 'debug'],
  ];

  it.each(overrides)('takes %s=%s from the environment', (name, value, key, expected) => {
    const config = loadConfig({ env: { [name]: value } });

    expect(config[key]).toEqual(expected);
    expect(config[key]).not.toEqual(loadConfig({ env: {} })[key]);
  });

  it('reads a setting from the config file named in STRONGHOLD_CONFIG', () => {
    const file = configFile({ min_confirmations: 4 });

    const config = loadConfig({ env: { STRONGHOLD_CONFIG: file } });

    expect(config.min_confirmations).toBe(4);
  });

  it('lets the environment override the config file', () => {
    const file = configFile({ min_confirmations: 4, poll_interval_ms: 900 });

    const config = loadConfig({ file, env: { STRONGHOLD_MIN_CONFIRMATIONS: '7' } });

    expect(config.min_confirmations).toBe(7);
    expect(config.poll_interval_ms).toBe(900);
  });

  it('lets explicit overrides win over the environment', () => {
    const config = loadConfig({
      env: { STRONGHOLD_MIN_CONFIRMATIONS: '7' },
      overrides: { min_confirmations: 2 },
    });

    expect(config.min_confirmations).toBe(2);
  });

  it('rejects an unknown key in the config file with a did-you-mean hint', () => {
    const file = configFile({ min_confirmation: 4 });

    const err = configErrorOf(() => loadConfig({ file, env: {} }));

    expect(err.setting).toBe('min_confirmation');
    expect(err.message).toContain('did you mean "min_confirmations"?');
  });

  it('rejects an unknown key that resembles no setting without a hint', () => {
    const file = configFile({ favourite_colour: 'blue' });

    const err = configErrorOf(() => loadConfig({ file, env: {} }));

    expect(err.setting).toBe('favourite_colour');
    expect(err.message).not.toContain('did you mean');
  });

  it('rejects a config file that is not JSON', () => {
    const file = configFile('min_confirmations = 4');

    const err = configErrorOf(() => loadConfig({ file, env: {} }));

    expect(err.setting).toBe('config');
    expect(err.message).toContain('not valid JSON');
  });

  it('rejects a config file that holds an array instead of an object', () => {
    const file = configFile([1, 2]);

    expect(configErrorOf(() => loadConfig({ file, env: {} })).setting).toBe('config');
  });

  it('rejects a config file that cannot be read', () => {
    const file = join(tempDir(), 'missing.json');

    const err = configErrorOf(() => loadConfig({ file, env: {} }));

    expect(err.setting).toBe('config');
    expect(err.message).toContain(file);
  });

  it('names the setting of an invalid value that came from the config file', () => {
    const file = configFile({ workers: 0 });

    const err = configErrorOf(() => loadConfig({ file, env: {} }));

    expect(err.setting).toBe('workers');
  });

  // One row per validation rule; each must be refused and blamed on its setting.
  const invalid: [string, string, string][] = [
    ['STRONGHOLD_DATA_DIR', '', 'empty path'],
    ['STRONGHOLD_NETWORK', 'regtest', 'network outside the enum'],
    ['STRONGHOLD_PUBLIC_LISTEN', 'localhost', 'listen address without a port'],
    ['STRONGHOLD_PUBLIC_LISTEN', 'unix:relative.sock', 'relative unix socket path'],
    ['STRONGHOLD_INTERNAL_LISTEN', '127.0.0.1:65536', 'port above 65535'],
    ['STRONGHOLD_WALLET_RPC_URL', 'not a url', 'wallet URL that does not parse'],
    ['STRONGHOLD_WALLET_RPC_URL', 'ftp://127.0.0.1:18082', 'wallet URL that is not http(s)'],
    ['STRONGHOLD_MIN_CONFIRMATIONS', 'ten', 'count that is not a number'],
    ['STRONGHOLD_MIN_CONFIRMATIONS', '', 'empty count, which Number() would read as 0'],
    ['STRONGHOLD_MIN_CONFIRMATIONS', '1.5', 'fractional count'],
    ['STRONGHOLD_MIN_CONFIRMATIONS', '1e1', 'count in exponent notation'],
    ['STRONGHOLD_MIN_CONFIRMATIONS', '-1', 'count below the range'],
    ['STRONGHOLD_MIN_CONFIRMATIONS', '1001', 'count above the range'],
    ['STRONGHOLD_MIN_PAYMENT_ATOMIC', '0.5', 'fractional atomic amount'],
    ['STRONGHOLD_MIN_PAYMENT_ATOMIC', '-1', 'negative atomic amount'],
    ['STRONGHOLD_MIN_PAYMENT_ATOMIC', '007', 'atomic amount with leading zeros'],
    ['STRONGHOLD_MIN_PAYMENT_ATOMIC', '123456789012345678901', 'atomic amount of 21 digits'],
    ['STRONGHOLD_START_HEIGHT', '100000001', 'start height above the range'],
    ['STRONGHOLD_POLL_INTERVAL_MS', '49', 'poll interval below 50 ms'],
    ['STRONGHOLD_WORKERS', '0', 'no workers'],
    ['STRONGHOLD_LOG_LEVEL', 'loud', 'log level outside the enum'],
    ['STRONGHOLD_BLOOM_FALSE_POSITIVE_RATE', '0.5', 'false positive rate of 0.5'],
    ['STRONGHOLD_OUTBOUND_PROXY', 'http://127.0.0.1:9050', 'proxy that is not socks5h'],
    ['STRONGHOLD_TOR_ONLY', 'yes', 'boolean spelled yes'],
    ['STRONGHOLD_MERCHANT_REQUESTS_IN_FLIGHT', '0', 'no merchant request ever in progress'],
  ];

  it.each(invalid)('rejects %s=%j (%s) with a ConfigError naming it', (name, value) => {
    const key = name.slice('STRONGHOLD_'.length).toLowerCase();

    const err = configErrorOf(() => loadConfig({ env: { [name]: value } }));

    expect(err.code).toBe('invalid_config');
    expect(err.setting).toBe(key);
    expect(err.message).toContain(`"${key}"`);
    expect(err.message).toContain(name);
  });

  it('accepts port 0 so that tests can ask for an ephemeral port', () => {
    const config = loadConfig({ env: { STRONGHOLD_PUBLIC_LISTEN: '127.0.0.1:0' } });

    expect(config.public_listen).toBe('127.0.0.1:0');
  });

  it('reads tor_only from the environment as a boolean', () => {
    expect(loadConfig({ env: { STRONGHOLD_TOR_ONLY: 'true' } }).tor_only).toBe(true);
    expect(loadConfig({ env: { STRONGHOLD_TOR_ONLY: '0' } }).tor_only).toBe(false);
  });
});

describe('parseListen', () => {
  it('reads unix:/path as a unix socket', () => {
    expect(parseListen('unix:/run/stronghold/public.sock')).toEqual({
      kind: 'unix',
      path: '/run/stronghold/public.sock',
    });
  });

  it('reads host:port as TCP', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080 });
  });

  it('reads a bracketed IPv6 host without its brackets', () => {
    expect(parseListen('[::1]:0')).toEqual({ kind: 'tcp', host: '::1', port: 0 });
  });

  it('reads a host name with its port', () => {
    expect(parseListen('localhost:18080')).toEqual({ kind: 'tcp', host: 'localhost', port: 18080 });
  });
});
