import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { MerchantStore } from '../../src/merchants/merchant-store.js';
import { DATABASE_FILE } from '../../src/service.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { PURGED_TXID_PREFIX, Retention } from '../../src/storage/retention.js';
import { TicketStore } from '../../src/storage/ticket-store.js';
import { loadSecret, type Secrets, tokenHash } from '../../src/tickets/secrets.js';
import { Outbox } from '../../src/webhooks/outbox.js';
import { readDatabase, runCli, ServiceProcess } from '../support/crash-harness.js';
import { closedPortUrl, randomPid, randomTxid, tempDir } from '../support/temp-service.js';

/*
 * `stronghold purge` and the Retention store behind it: old webhook bodies
 * and the transaction ids of old redeemed payments go, from the tables and
 * from the file; balances, totals and every row count stay exactly as they
 * were.
 */

const DAY = 86_400;
const NOW = Math.floor(Date.now() / 1000);
const OLD = NOW - 200 * DAY;
const RECENT = NOW - DAY;
const CURSOR = 5_000;
const RESCAN_BLOCKS = 12;
const OLD_CUSTOMER = 'old.customer.b81f@example.onion';
const NEW_CUSTOMER = 'new.customer.27c4@example.onion';

type Seeded = {
  dataDir: string;
  claimed: string;
  unclaimed: string;
  /** Transaction ids the purge must replace. */
  purged: string[];
  /** Transaction ids the purge must keep, each with why. */
  kept: Record<string, string>;
  deliveries: {
    oldDelivered: string;
    oldFailed: string;
    recentDelivered: string;
    oldPending: string;
  };
};

/**
 * A database with one payment of each kind the purge must tell apart, and
 * webhook deliveries of each age and outcome.
 */
function seed(): Seeded {
  const dataDir = join(tempDir(), 'data');
  const secrets = loadSecret(join(dataDir, 'secret.key'));
  const db = openDatabase(join(dataDir, DATABASE_FILE));
  const [claimed, unclaimed, pending] = [randomPid(), randomPid(), randomPid()];
  const tag = (pid: string) => secrets.pidTag(Buffer.from(pid, 'hex'));
  const txids = Array.from({ length: 8 }, randomTxid);
  const pay = payer(db);

  pay(txids[0]!, tag(claimed), 'confirmed', 1_000, OLD, 5_000_000_000_000n);
  pay(txids[1]!, tag(claimed), 'dust', 1_001, OLD, 5n);
  pay(txids[2]!, tag(claimed), 'confirmed', 1_002, RECENT, 2_000_000_000_000n);
  pay(txids[3]!, tag(claimed), 'confirmed', CURSOR - 5, OLD, 1_000_000_000_000n);
  pay(txids[4]!, tag(unclaimed), 'confirmed', 1_003, OLD, 3_000_000_000_000n);
  pay(txids[5]!, tag(pending), 'pending', 1_004, OLD, 4_000_000_000_000n);
  pay(txids[6]!, tag(claimed), 'orphaned', 1_005, OLD, 6_000_000_000_000n);
  const tickets = new TicketStore(db);
  for (const pid of [claimed, pending])
    tickets.claim(tag(pid), tokenHash(secrets.token(Buffer.from(pid, 'hex'))), OLD);
  db.prepare("INSERT INTO meta (key, value) VALUES ('scan_height', ?)").run(String(CURSOR));

  const deliveries = seedDeliveries(db, txids[7]!);
  db.close();
  return {
    dataDir,
    claimed,
    unclaimed,
    purged: [txids[0]!, txids[1]!, txids[6]!],
    kept: {
      [txids[2]!]: 'confirmed recently',
      [txids[3]!]: 'inside the blocks the monitor rescans',
      [txids[4]!]: 'not redeemed',
      [txids[5]!]: 'still pending',
    },
    deliveries,
  };
}

function payer(db: Db) {
  const insert = db.prepare(
    `INSERT INTO payments (txid, subaddr_major, subaddr_minor, pid_tag, amount, height, state,
       required_confirmations, first_seen_at, confirmed_at, orphaned_at)
     VALUES (?, 0, 0, ?, ?, ?, ?, 10, ?, ?, ?)`,
  );
  return (txid: string, tag: Buffer, state: string, height: number, at: number, amount: bigint) =>
    insert.run(
      txid,
      tag,
      amount,
      height,
      state,
      at,
      state === 'confirmed' ? at : null,
      state === 'orphaned' ? at : null,
    );
}

function seedDeliveries(db: Db, paidTxid: string): Seeded['deliveries'] {
  const merchant = new MerchantStore(db).add(
    { name: 'Shop', public_key: 'A'.repeat(43), webhook_url: 'http://shop.onion/hook' },
    OLD,
  );
  const outbox = new Outbox(db);
  const enqueue = (customer: string, at: number) =>
    outbox.enqueue({
      merchantId: merchant.id,
      invoiceId: 'inv_AAAAAAAAAAAAAAAAAAAAAA',
      type: 'InvoiceReceivedPayment',
      metadata: { customer },
      extra: {
        afterExpiration: false,
        payment: { id: `${paidTxid}-0-0`, value: '5000', status: 'pending' },
      },
      now: at,
    });
  const settle = db.prepare(
    'UPDATE webhook_deliveries SET delivered_at = ?, failed_at = ? WHERE id = ?',
  );
  const oldDelivered = enqueue(OLD_CUSTOMER, OLD);
  const oldFailed = enqueue(OLD_CUSTOMER, OLD);
  const recentDelivered = enqueue(NEW_CUSTOMER, RECENT);
  const oldPending = enqueue(NEW_CUSTOMER, OLD);
  settle.run(OLD, null, oldDelivered);
  settle.run(null, OLD, oldFailed);
  settle.run(RECENT, null, recentDelivered);
  return { oldDelivered, oldFailed, recentDelivered, oldPending };
}

type Books = { balances: Record<string, string>; totals: unknown[]; counts: unknown[] };

/** What balances and audits read: per-id balances, totals by state, row counts. */
function books(file: string, secrets: Secrets, pids: string[]): Books {
  return readDatabase(file, (db) => {
    const tickets = new TicketStore(db);
    return {
      balances: Object.fromEntries(
        pids.map((pid) => [
          pid,
          tickets.balance(secrets.pidTag(Buffer.from(pid, 'hex'))).toString(),
        ]),
      ),
      totals: db
        .prepare('SELECT state, count(*), sum(amount) FROM payments GROUP BY state ORDER BY state')
        .raw()
        .all(),
      counts: [
        'payments',
        'tickets',
        'webhook_deliveries',
        'webhook_attempts',
        'invoices',
        'merchants',
      ].map((t) => db.prepare(`SELECT count(*) FROM ${t}`).pluck().get()),
    };
  });
}

/** The database file and its WAL as bytes, as someone who copies them would read them. */
function fileText(dataDir: string): string {
  const db = join(dataDir, DATABASE_FILE);
  const parts = [db, `${db}-wal`]
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f).toString('latin1'));
  return parts.join('');
}

function bodyOf(file: string, id: string): Record<string, unknown> {
  return readDatabase(file, (db) =>
    JSON.parse(
      db.prepare('SELECT body FROM webhook_deliveries WHERE id = ?').pluck().get(id) as string,
    ),
  );
}

describe('stronghold purge', () => {
  it('strips old webhook bodies and old redeemed txids from the file, leaving balances, totals and counts exact', async () => {
    const seeded = seed();
    const file = join(seeded.dataDir, DATABASE_FILE);
    const secrets = loadSecret(join(seeded.dataDir, 'secret.key'));
    const pids = [seeded.claimed, seeded.unclaimed];
    const before = books(file, secrets, pids);
    const textBefore = fileText(seeded.dataDir);
    for (const txid of seeded.purged) expect(textBefore).toContain(txid);
    expect(textBefore).toContain(OLD_CUSTOMER);

    const result = await runCli(['purge'], { data_dir: seeded.dataDir, retention_days: 90 });

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      cutoff: expect.any(Number),
      webhookBodies: 2,
      paymentTxids: seeded.purged.length,
      checkpointed: true,
    });
    expect(books(file, secrets, pids)).toEqual(before);
    const textAfter = fileText(seeded.dataDir);
    for (const txid of seeded.purged) expect(textAfter).not.toContain(txid);
    expect(textAfter).not.toContain(OLD_CUSTOMER);
    for (const [txid, why] of Object.entries(seeded.kept)) expect(textAfter, why).toContain(txid);
    expect(textAfter).toContain(NEW_CUSTOMER);

    const stored = readDatabase(
      file,
      (db) => db.prepare('SELECT txid FROM payments').pluck().all() as string[],
    );
    const hashed = stored.filter((t) => t.startsWith(PURGED_TXID_PREFIX));
    expect(hashed).toHaveLength(seeded.purged.length);
    for (const txid of hashed) expect(txid).toMatch(/^purged:[0-9a-f]{64}$/);
    expect(readDatabase(file, (db) => db.pragma('integrity_check', { simple: true }))).toBe('ok');
  }, 60_000);

  it('keeps the envelope of a purged delivery, so that it can still be redelivered', async () => {
    const seeded = seed();
    const file = join(seeded.dataDir, DATABASE_FILE);
    const { oldDelivered, recentDelivered, oldPending } = seeded.deliveries;
    const untouched = [bodyOf(file, recentDelivered), bodyOf(file, oldPending)];

    await runCli(['purge'], { data_dir: seeded.dataDir, retention_days: 90 });

    expect(bodyOf(file, oldDelivered)).toEqual({
      deliveryId: oldDelivered,
      webhookId: expect.stringMatching(/^wh_/),
      originalDeliveryId: oldDelivered,
      isRedelivery: false,
      type: 'InvoiceReceivedPayment',
      timestamp: OLD,
      storeId: expect.stringMatching(/^m_/),
      invoiceId: 'inv_AAAAAAAAAAAAAAAAAAAAAA',
      metadata: {},
      afterExpiration: false,
    });
    expect([bodyOf(file, recentDelivered), bodyOf(file, oldPending)]).toEqual(untouched);

    const db = openDatabase(file);
    onTestFinished(() => {
      db.close();
    });
    const outbox = new Outbox(db);
    const again = outbox.redeliver(oldDelivered, NOW);
    expect(outbox.get(again)?.isRedelivery).toBe(true);
  });

  it('changes nothing when run a second time', async () => {
    const seeded = seed();
    const file = join(seeded.dataDir, DATABASE_FILE);
    await runCli(['purge'], { data_dir: seeded.dataDir, retention_days: 90 });
    const contents = readDatabase(file, (db) =>
      db.prepare('SELECT * FROM payments ORDER BY id').raw().all(),
    );

    const second = await runCli(['purge'], { data_dir: seeded.dataDir, retention_days: 90 });

    expect(JSON.parse(second.stdout)).toMatchObject({ webhookBodies: 0, paymentTxids: 0 });
    expect(
      readDatabase(file, (db) => db.prepare('SELECT * FROM payments ORDER BY id').raw().all()),
    ).toEqual(contents);
  }, 60_000);

  it('purges nothing younger than retention_days', () => {
    const seeded = seed();
    const db = openDatabase(join(seeded.dataDir, DATABASE_FILE));
    onTestFinished(() => {
      db.close();
    });

    const result = new Retention(db).purge({
      now: NOW,
      retentionDays: 365,
      rescanBlocks: RESCAN_BLOCKS,
    });

    expect(result).toMatchObject({ webhookBodies: 0, paymentTxids: 0 });
  });

  it('runs beside a live service, whose tokens keep their balance', async () => {
    const seeded = seed();
    const secrets = loadSecret(join(seeded.dataDir, 'secret.key'));
    const token = secrets.token(Buffer.from(seeded.claimed, 'hex'));
    const service = await ServiceProcess.start({
      settings: {
        data_dir: seeded.dataDir,
        public_listen: '127.0.0.1:0',
        internal_listen: '127.0.0.1:0',
        wallet_rpc_url: await closedPortUrl(),
        workers: 1,
        bloom_expected_items: 1_000,
      },
    });
    onTestFinished(() => service.kill('SIGKILL'));
    const status = async () =>
      (await (await fetch(`${service.publicUrl}/api/v1/token/${token}`)).json()) as Record<
        string,
        unknown
      >;
    const before = await status();

    const result = await runCli(['purge'], { data_dir: seeded.dataDir, retention_days: 90 });

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ paymentTxids: seeded.purged.length });
    expect(before.balance_atomic).toBe('8000000000000');
    expect(await status()).toEqual(before);
  }, 60_000);

  it('refuses a retention below one day or a negative rescan depth', () => {
    const db = openDatabase(join(tempDir(), 'stronghold.db'));
    onTestFinished(() => {
      db.close();
    });
    const retention = new Retention(db);

    expect(() => retention.purge({ now: NOW, retentionDays: 0, rescanBlocks: 1 })).toThrow(
      RangeError,
    );
    expect(() => retention.purge({ now: NOW, retentionDays: 1, rescanBlocks: -1 })).toThrow(
      RangeError,
    );
  });
});
