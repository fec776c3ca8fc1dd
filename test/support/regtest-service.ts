import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type Config, type ConfigInput, loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { Service } from '../../src/service.js';
import type { Regtest } from './regtest.js';

/** A real service reading a regtest chain's watch-only receiver. */
export type ChainService = {
  service: Service;
  config: Config;
  api: string;
  internal: string;
  close(): Promise<void>;
};

/**
 * Starts the service on loopback listeners and a fresh data dir, polling
 * the receiver quickly so tests wait on the chain, not on the monitor.
 */
export async function startServiceOn(chain: Regtest, overrides: ConfigInput = {}): Promise<ChainService> {
  const dir = mkdtempSync(join(tmpdir(), 'stronghold-chain-'));
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: join(dir, 'data'),
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      wallet_rpc_url: chain.receiverRpcUrl,
      poll_interval_ms: 100,
      max_backoff_ms: 500,
      log_level: 'silent',
      ...overrides,
    },
  });
  const service = await Service.start(config, createLogger(config.log_level));
  return {
    service,
    config,
    api: `http://${service.publicListener.url}`,
    internal: `http://${service.internalListener.url}`,
    close: async () => {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Refreshes the receiver wallet and polls `probe` until `check` passes;
 * throws with the last value seen when time runs out.
 */
export async function eventually<T>(
  chain: Regtest,
  probe: () => Promise<T>,
  check: (value: T) => boolean,
  ms = 90_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    await chain.refresh('receiver').catch(() => undefined);
    const value = await probe();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
