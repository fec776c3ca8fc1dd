#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { type Config, loadConfig } from './config/config.js';
import { StrongholdError } from './errors.js';
import { createLogger } from './logger.js';
import { makeIntegratedAddress } from './monero/address.js';
import { WalletRpcClient } from './monitor/wallet-rpc-client.js';
import { DATABASE_FILE, Service } from './service.js';
import { migrate, openDatabase } from './storage/database.js';

const USAGE = `usage: stronghold <command> [--config FILE]

commands:
  serve                 run the service
  migrate               apply pending schema migrations and exit
  address [--pid HEX]   print the integrated address for a payment id (random if none)
`;

type Command = (config: Config, values: Record<string, string | boolean | undefined>) => Promise<void>;

const COMMANDS: Record<string, Command> = { serve, migrate: runMigrate, address };

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      pid: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = COMMANDS[positionals[0] ?? ''];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const config = loadConfig({ file: values.config });
  await command(config, values);
}

async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.log_level);
  const service = await Service.start(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    service.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function runMigrate(config: Config): Promise<void> {
  const db = openDatabase(join(config.data_dir, DATABASE_FILE));
  const result = migrate(db);
  db.close();
  process.stdout.write(`${JSON.stringify({ schema_version: result.to })}\n`);
}

async function address(config: Config, values: Record<string, unknown>): Promise<void> {
  const pidHex = typeof values.pid === 'string' ? values.pid : randomBytes(8).toString('hex');
  if (!/^[0-9a-fA-F]{16}$/.test(pidHex)) {
    throw new StrongholdError('invalid_pid', '--pid must be 16 hex digits');
  }
  const primary =
    config.primary_address ||
    (await new WalletRpcClient({
      url: config.wallet_rpc_url,
      timeoutMs: config.wallet_rpc_timeout_ms,
    }).getAddress());
  const integrated = makeIntegratedAddress(primary, Buffer.from(pidHex, 'hex'));
  process.stdout.write(`${JSON.stringify({ pid: pidHex.toLowerCase(), integrated_address: integrated })}\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof StrongholdError) {
    process.stderr.write(`stronghold: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`stronghold: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
