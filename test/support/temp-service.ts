import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Logger } from 'pino';
import { onTestFinished } from 'vitest';

import { type Config, type ConfigInput, loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics.js';
import { Service } from '../../src/service.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { type PaymentEvent, PaymentStore, type Transfer } from '../../src/storage/payment-store.js';
import { TicketStore } from '../../src/storage/ticket-store.js';
import { BloomFilter } from '../../src/tickets/bloom-filter.js';
import { Secrets } from '../../src/tickets/secrets.js';
import { TicketService } from '../../src/tickets/ticket-service.js';

/*
 * Every helper here ties what it creates to the running test and removes it
 * when that test finishes, so each test starts from an empty database.
 * Call them from inside `it`, not from `describe` or `beforeAll`.
 */

/** A fresh directory, removed when the test finishes. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stronghold-test-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function silentLogger(): Logger {
  return createLogger('silent');
}

/** An http URL on 127.0.0.1 where nothing listens (the port was just released). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

export function randomPid(): string {
  return randomBytes(8).toString('hex');
}

export function randomTxid(): string {
  return randomBytes(32).toString('hex');
}

/** A checked transfer as the monitor hands it to PaymentStore: 5,000 atomic units at height 100 unless told. */
export function makeTransfer(fields: Partial<Transfer> = {}): Transfer {
  return {
    txid: randomTxid(),
    major: 0,
    minor: 1,
    pidTag: randomBytes(16),
    amount: 5_000n,
    height: 100,
    unlockTime: 0n,
    doubleSpendSeen: false,
    ...fields,
  };
}

/**
 * A validated config for a throwaway service: a data dir that does not
 * exist yet inside a temp dir, both listeners on ephemeral ports, and a
 * wallet RPC URL where nothing answers.
 */
export async function tempConfig(overrides: ConfigInput = {}): Promise<Config> {
  return loadConfig({
    env: {},
    overrides: {
      // Only made when not given: tempDir() must run inside a test.
      data_dir: overrides.data_dir ?? join(tempDir(), 'data'),
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      wallet_rpc_url: await closedPortUrl(),
      wallet_rpc_timeout_ms: 1_000,
      poll_interval_ms: 50,
      max_backoff_ms: 200,
      log_level: 'silent',
      bloom_expected_items: 1_000,
      cache_max_entries: 100,
      ...overrides,
    },
  });
}

export type TempService = {
  service: Service;
  config: Config;
  /** Closes the service once; later calls (and the test's cleanup) do nothing. */
  close(): Promise<void>;
};

/** Starts a real Service on `tempConfig(overrides)`; closed when the test finishes. */
export async function startTempService(overrides: ConfigInput = {}): Promise<TempService> {
  const config = await tempConfig(overrides);
  const service = await Service.start(config, silentLogger());
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= service.close(100));
  onTestFinished(close);
  return { service, config, close };
}

export type TicketHarnessOptions = {
  minConfirmations?: number;
  dustFloor?: bigint;
  secret?: Buffer;
};

export type PayOptions = {
  /** Blocks mined on top of the transfer's block; the default confirms it. */
  confirmations?: number;
  unlockTime?: bigint;
  txid?: string;
  major?: number;
  minor?: number;
};

/**
 * The ticket layer on a temp database, wired as Service wires it, with a
 * simulated chain: `pay` records a transfer the way the monitor would and
 * `mine` adds blocks. The scans it applies start at the new wallet height,
 * so seeding one payment never orphans another.
 */
export class TicketHarness {
  readonly dbFile: string;
  readonly db: Db;
  readonly payments: PaymentStore;
  readonly ticketStore: TicketStore;
  readonly secrets: Secrets;
  readonly bloom: BloomFilter;
  readonly metrics = new Metrics();
  readonly tickets: TicketService;
  readonly minConfirmations: number;
  height = 100;
  now = 1_700_000_000;

  constructor(options: TicketHarnessOptions = {}) {
    this.minConfirmations = options.minConfirmations ?? 10;
    this.dbFile = join(tempDir(), 'stronghold.db');
    this.db = openDatabase(this.dbFile);
    onTestFinished(() => {
      if (this.db.open) this.db.close();
    });
    this.payments = new PaymentStore(this.db, {
      dustFloor: options.dustFloor ?? 1_000n,
      termsOf: () => ({ requiredConfirmations: this.minConfirmations, invoiceSeq: null }),
    });
    this.ticketStore = new TicketStore(this.db);
    this.secrets = new Secrets(options.secret ?? randomBytes(32));
    this.bloom = BloomFilter.create(1_000, 0.001);
    this.tickets = new TicketService({
      payments: this.payments,
      tickets: this.ticketStore,
      secrets: this.secrets,
      bloom: this.bloom,
      cacheMaxEntries: 100,
      walletHeight: () => this.height,
      counters: this.metrics.ticketCounters(),
      now: () => this.now,
    });
  }

  /** Records one transfer to `pid` in a new block and feeds the events to the ticket service. */
  pay(pid: string, amount: bigint, options: PayOptions = {}): PaymentEvent[] {
    const transfer: Transfer = {
      txid: options.txid ?? randomTxid(),
      major: options.major ?? 0,
      minor: options.minor ?? 0,
      pidTag: this.secrets.pidTag(Buffer.from(pid, 'hex')),
      amount,
      height: this.height + 1,
      unlockTime: options.unlockTime ?? 0n,
      doubleSpendSeen: false,
    };
    this.height = transfer.height + (options.confirmations ?? this.minConfirmations);
    return this.#scan([transfer]);
  }

  /** Adds `blocks` empty blocks, confirming what they bring to the required depth. */
  mine(blocks: number): PaymentEvent[] {
    this.height += blocks;
    return this.#scan([]);
  }

  #scan(transfers: Transfer[]): PaymentEvent[] {
    const events = this.payments.apply({
      transfers,
      walletHeight: this.height,
      from: this.height,
      now: this.now,
    });
    this.tickets.onPaymentEvents(events);
    return events;
  }
}

/** Resolves once `check()` is true; rejects with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
