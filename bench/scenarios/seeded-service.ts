import type { ConfigInput } from '../../src/config/config.js';
import type { Harness, ServiceProcess } from '../harness.js';
import { closedPortUrl } from '../http-measure.js';
import { SeedDatabase } from '../seed-database.js';

/** Payments every HTTP scenario stores first, so the filter and tables are not empty. */
export function basePayments(harness: Harness): number {
  return harness.options.quick ? 2_000 : 20_000;
}

/** Claimed payment ids (and tokens) the repeat and introspection scenarios cycle through. */
export function repeatSetSize(harness: Harness): number {
  return harness.options.quick ? 500 : 10_000;
}

/** Seeds a fresh data dir with `seed`, then starts the service on it. */
export async function seededService<T>(
  harness: Harness,
  label: string,
  seed: (db: SeedDatabase) => T,
  overrides: ConfigInput = {},
): Promise<{ service: ServiceProcess; seeded: T; dataDir: string }> {
  const dataDir = harness.dir(label);
  const db = new SeedDatabase(dataDir);
  let seeded: T;
  try {
    seeded = seed(db);
  } finally {
    db.close();
  }
  const service = await startOn(harness, label, dataDir, overrides);
  return { service, seeded, dataDir };
}

/**
 * Starts the service on an existing data dir. The wallet RPC URL is a
 * closed port unless given: the service then reports not-ready, and
 * everything but the monitor works.
 */
export async function startOn(
  harness: Harness,
  label: string,
  dataDir: string,
  overrides: ConfigInput = {},
): Promise<ServiceProcess> {
  return harness.startService(label, {
    data_dir: dataDir,
    wallet_rpc_url: await closedPortUrl(),
    ...overrides,
  });
}
