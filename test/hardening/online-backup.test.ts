import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { DATABASE_FILE } from '../../src/service.js';
import { openDatabase } from '../../src/storage/database.js';
import { loadSecret } from '../../src/tickets/secrets.js';
import {
  readDatabase,
  runCli,
  ServiceProcess,
  serveRecordedWallet,
  type Settings,
} from '../support/crash-harness.js';
import { makeRecording } from '../support/recorded-wallet-rpc.js';
import { closedPortUrl, tempDir, waitFor } from '../support/temp-service.js';

/*
 * `stronghold backup FILE` against the live database of a running
 * `stronghold serve` whose monitor commits a scan every poll and whose
 * clients keep claiming: the copy passes integrity_check, holds every row
 * that existed before the backup started, is one consistent snapshot (its
 * payments are exactly the recording up to its own cursor), and a service
 * started on it answers as the original did.
 */

const DUST_FLOOR = 1_000_000n;
const HISTORY_ROWS = 50_000;
const NO_PAYMENT_ID = '0000000000000000';
const recording = makeRecording({ seed: 11, blocks: 1_500, customers: 200, dustFloor: DUST_FLOOR });

type Db = Database.Database;
type PaymentKey = {
  id: bigint;
  txid: string;
  subaddr_minor: bigint;
  amount: bigint;
  pid_tag: Buffer;
};

describe('stronghold backup', () => {
  it('copies the live database consistently while the service ingests and claims', async () => {
    const dataDir = join(tempDir(), 'data');
    const file = join(dataDir, DATABASE_FILE);
    seedHistory(dataDir);
    const chain = { startHeight: 20, finalHeight: 1_510, blocksPerTick: 30, tickMs: 1_000 };
    const settings: Settings = {
      data_dir: dataDir,
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      min_confirmations: 2,
      min_payment_atomic: DUST_FLOOR.toString(),
      bloom_expected_items: 100_000,
    };
    const { service, wallet } = await serveRecordedWallet(recording, chain, settings);
    const traffic = new Traffic(service.publicUrl);
    await waitFor(
      'claims and scans',
      () => traffic.tokens.size >= 20 && wallet.transferCalls >= 20,
      60_000,
    );

    // Every token answered before the snapshot was committed before it.
    const answered = new Map(traffic.tokens);
    const before = snapshot(file);
    const target = join(tempDir(), 'stronghold-backup.db');
    const callsBefore = wallet.transferCalls;
    const result = await runCli(['backup', target], { data_dir: dataDir });
    const scansDuring = wallet.transferCalls - callsBefore;
    await traffic.stop();

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(statSync(target).mode & 0o777).toBe(0o600);
    readDatabase(target, (copy) => {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      const cursor = cursorOf(copy);
      expect(cursor).toBeGreaterThanOrEqual(before.cursor);

      const payments = new Map(paymentKeys(copy).map((p) => [p.id, p]));
      for (const row of before.payments) expect(payments.get(row.id)).toEqual(row);
      const tickets = new Map(
        ticketRows(copy).map((t) => [t.pid_tag.toString('hex'), t.token_hash.toString('hex')]),
      );
      for (const t of before.tickets)
        expect(tickets.get(t.pid_tag.toString('hex'))).toBe(t.token_hash.toString('hex'));

      // One snapshot: the recorded payments are exactly those up to the copy's own cursor.
      const recorded = [...payments.values()].filter((p) => p.id > BigInt(HISTORY_ROWS));
      const expected = recording.transfers.filter(
        (t) => t.height <= cursor && t.payment_id !== NO_PAYMENT_ID,
      );
      expect(recorded.length).toBe(expected.length);
    });
    // The service kept committing while the copy was taken.
    expect(scansDuring).toBeGreaterThan(0);

    // Restored: a service on the copy answers a claimed id with its token.
    const restoredDir = join(tempDir(), 'restored');
    mkdirSync(restoredDir, { mode: 0o700 });
    copyFileSync(target, join(restoredDir, DATABASE_FILE));
    copyFileSync(join(dataDir, 'secret.key'), join(restoredDir, 'secret.key'));
    const restored = await ServiceProcess.start({
      settings: { ...settings, data_dir: restoredDir, wallet_rpc_url: await closedPortUrl() },
    });
    onTestFinished(() => restored.kill('SIGKILL'));
    const [pid, token] = [...answered][0]!;
    const answer = await redeem(restored.publicUrl, pid);
    expect(answer).toMatchObject({ status: 'already_claimed', service_token: token });
  }, 180_000);
});

/** Confirmed payments from long ago, so the copy spans many pages. */
function seedHistory(dataDir: string): void {
  loadSecret(join(dataDir, 'secret.key'));
  const db = openDatabase(join(dataDir, DATABASE_FILE));
  const insert = db.prepare(
    `INSERT INTO payments (id, txid, subaddr_major, subaddr_minor, pid_tag, amount, height, state,
       required_confirmations, first_seen_at, confirmed_at)
     VALUES (?, ?, 0, 0, ?, 5000000000, 1, 'confirmed', 10, 1600000000, 1600000000)`,
  );
  db.transaction(() => {
    for (let id = 1; id <= HISTORY_ROWS; id++)
      insert.run(id, randomBytes(32).toString('hex'), randomBytes(16));
  })();
  db.close();
}

type Snapshot = {
  cursor: number;
  payments: PaymentKey[];
  tickets: { pid_tag: Buffer; token_hash: Buffer }[];
};

function snapshot(file: string): Snapshot {
  return readDatabase(file, (db) => ({
    cursor: cursorOf(db),
    payments: paymentKeys(db),
    tickets: ticketRows(db),
  }));
}

function cursorOf(db: Db): number {
  return Number(db.prepare("SELECT value FROM meta WHERE key = 'scan_height'").pluck().get() ?? 0);
}

function paymentKeys(db: Db): PaymentKey[] {
  return db
    .prepare('SELECT id, txid, subaddr_minor, amount, pid_tag FROM payments ORDER BY id')
    .all() as PaymentKey[];
}

function ticketRows(db: Db) {
  return db.prepare('SELECT pid_tag, token_hash FROM tickets').all() as {
    pid_tag: Buffer;
    token_hash: Buffer;
  }[];
}

async function redeem(url: string, pid: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}/api/v1/redeem`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pid }),
  });
  return (await response.json()) as Record<string, unknown>;
}

/** Clients redeeming the recording's customers until stopped. */
class Traffic {
  readonly tokens = new Map<string, string>();
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(url: string) {
    this.#loops = Array.from({ length: 4 }, (_, i) => this.#loop(url, i));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  async #loop(url: string, offset: number): Promise<void> {
    for (let i = offset; this.#running; i += 4) {
      const pid = recording.customers[i % recording.customers.length]!;
      const body = await redeem(url, pid).catch(() => ({}) as Record<string, unknown>);
      if (typeof body.service_token === 'string') this.tokens.set(pid, body.service_token);
    }
  }
}
