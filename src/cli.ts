#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fchmodSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import Database from 'better-sqlite3';

import { type Config, loadConfig } from './config/config.js';
import { StrongholdError } from './errors.js';
import { createLogger } from './logger.js';
import { MerchantStore } from './merchants/merchant-store.js';
import { makeIntegratedAddress } from './monero/address.js';
import { WalletRpcClient } from './monitor/wallet-rpc-client.js';
import { DATABASE_FILE, Service } from './service.js';
import { migrate, openDatabase } from './storage/database.js';
import { Retention } from './storage/retention.js';

const USAGE = `usage: stronghold <command> [--config FILE]

commands:
  serve                 run the service
  migrate               apply pending schema migrations and exit
  address [--pid HEX]   print the integrated address for a payment id (random if none)
  merchant add --name N --public-key K --webhook-url U [--webhook-secret S]
  merchant list
  merchant disable --id ID
  merchant add-key --id ID --public-key K
  merchant revoke-key --id ID --key-id KEY
  backup FILE           copy the live database consistently to FILE
  purge                 strip data older than retention_days (see README, Limitations)
`;

type Values = Record<string, string | boolean | undefined>;
type Command = (config: Config, values: Values, args: string[]) => Promise<void>;

const COMMANDS: Record<string, Command> = {
  serve,
  migrate: runMigrate,
  address,
  merchant,
  backup,
  purge,
};

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv);
  const command = COMMANDS[positionals[0] ?? ''];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const config = loadConfig({ file: values.config });
  await command(config, values, positionals.slice(1));
}

const OPTIONS = {
  config: { type: 'string' },
  pid: { type: 'string' },
  name: { type: 'string' },
  'public-key': { type: 'string' },
  'webhook-url': { type: 'string' },
  'webhook-secret': { type: 'string' },
  id: { type: 'string' },
  'key-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * A malformed command line is a usage error (exit 2), not a crash. One
 * base64url key in 64 starts with '-', which parseArgs refuses as a
 * separate argument; its message says to write `--public-key=-...`.
 */
function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw err;
    throw new StrongholdError('usage', `${(err as Error).message}\n${USAGE}`);
  }
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

async function merchant(config: Config, values: Values, args: string[]): Promise<void> {
  const db = openDatabase(join(config.data_dir, DATABASE_FILE));
  try {
    const store = new MerchantStore(db);
    const now = Math.floor(Date.now() / 1000);
    const id = String(values.id ?? '');
    const actions: Record<string, () => unknown> = {
      add: () =>
        store.add(
          {
            name: values.name,
            public_key: values['public-key'],
            webhook_url: values['webhook-url'],
            webhook_secret: values['webhook-secret'],
          },
          now,
        ),
      list: () => ({ merchants: store.list() }),
      disable: () => store.disable(id, now),
      'add-key': () => store.addKey(id, values['public-key'], now),
      'revoke-key': () => store.revokeKey(id, String(values['key-id'] ?? ''), now),
    };
    const action = actions[args[0] ?? ''];
    if (!action) throw new StrongholdError('usage', `merchant: unknown action\n${USAGE}`);
    process.stdout.write(`${JSON.stringify(action())}\n`);
  } finally {
    db.close();
  }
}

/** The most pages better-sqlite3 copies in one backup step: the whole file. */
const ALL_PAGES = 0x7fffffff;

/**
 * An online backup through SQLite's backup API, copied in one step: a
 * reader in WAL mode holds one snapshot without blocking the writer, so the
 * copy is consistent however busy the service is. Copied in small steps, a
 * backup starts over whenever the service commits in between, and under
 * steady traffic it never finishes. The file is created mode 0600 before
 * the copy so that no one else can read it while it is written.
 */
async function backup(config: Config, _values: Values, args: string[]): Promise<void> {
  const target = args[0];
  if (!target) throw new StrongholdError('usage', `backup: a target file is required\n${USAGE}`);
  const db = new Database(join(config.data_dir, DATABASE_FILE), { readonly: true, fileMustExist: true });
  try {
    const fd = openSync(target, 'w', 0o600);
    fchmodSync(fd, 0o600);
    closeSync(fd);
    await db.backup(target, { progress: () => ALL_PAGES });
    chmodSync(target, 0o600);
  } finally {
    db.close();
  }
  process.stdout.write(`${JSON.stringify({ backup: target })}\n`);
}

/**
 * Purges data older than `retention_days` (see Retention). Safe beside a
 * running service: it is one more writer transaction on the same file.
 */
async function purge(config: Config): Promise<void> {
  const db = openDatabase(join(config.data_dir, DATABASE_FILE));
  try {
    const result = new Retention(db).purge({
      now: Math.floor(Date.now() / 1000),
      retentionDays: config.retention_days,
      // The blocks the monitor rescans on every poll, as Service sets them.
      rescanBlocks: Math.max(config.min_confirmations, 10) + 2,
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    db.close();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof StrongholdError) {
    process.stderr.write(`stronghold: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`stronghold: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
