import { createHash, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { randomId } from '../src/ids.js';
import { InvoiceStore } from '../src/invoices/invoice-store.js';
import { MerchantStore } from '../src/merchants/merchant-store.js';
import { openDatabase } from '../src/storage/database.js';
import { Outbox } from '../src/webhooks/outbox.js';

/**
 * The raw rates scenarios are compared with, measured in this process on
 * the same machine in the same run: what better-sqlite3 and node:crypto do
 * with nothing of the service around them.
 */

export type SqliteRates = {
  /** Payment rows inserted per second, all in one transaction. */
  batchedInsertRowsPerS: number;
  /** Ticket-style claims per second, each its own transaction. */
  claimTxPerS: number;
  /**
   * Ticket-style claims per second, CLAIM_BATCH to a transaction, as the
   * service's group commit takes them under load.
   */
  batchedClaimsPerS: number;
  /** Indexed payment lookups by payment id tag per second. */
  pointLookupsPerS: number;
};

/** The same columns and key shapes the monitor writes: random txids and tags. */
export function measureSqlite(dir: string, rows: number, seconds: number): SqliteRates {
  const db = openDatabase(join(dir, 'raw.db'));
  try {
    const tags = Array.from({ length: rows }, () => randomBytes(16));
    const batchedInsertRowsPerS = batchedInserts(db, tags);
    const pointLookupsPerS = pointLookups(db, tags, seconds);
    const claimTxPerS = claims(db, seconds);
    const batchedClaimsPerS = batchedClaims(db, seconds);
    return { batchedInsertRowsPerS, claimTxPerS, batchedClaimsPerS, pointLookupsPerS };
  } finally {
    db.close();
  }
}

type Db = ReturnType<typeof openDatabase>;

function batchedInserts(db: Db, tags: Buffer[]): number {
  const insert = db.prepare(
    `INSERT INTO payments (txid, subaddr_major, subaddr_minor, pid_tag, amount, height, state,
       required_confirmations, first_seen_at, confirmed_at)
     VALUES (?, 0, ?, ?, ?, ?, 'confirmed', 10, ?, ?)`,
  );
  const txids = tags.map(() => randomBytes(32).toString('hex'));
  const started = performance.now();
  db.transaction(() => {
    for (let i = 0; i < tags.length; i++) {
      insert.run(txids[i], i % 1_000, tags[i], 1_000_000_000_000n, 1_000 + (i >> 7), 1, 1);
    }
  })();
  return tags.length / ((performance.now() - started) / 1000);
}

function pointLookups(db: Db, tags: Buffer[], seconds: number): number {
  const lookup = db.prepare(
    `SELECT state, amount, height, required_confirmations FROM payments
     WHERE pid_tag = ? AND invoice_seq IS NULL`,
  );
  return timed(seconds, (i) => lookup.all(tags[(i * 7_919) % tags.length]));
}

function claims(db: Db, seconds: number): number {
  const claim = db.prepare(
    `INSERT INTO tickets (pid_tag, token_hash, issued_at) VALUES (?, ?, ?)
     ON CONFLICT (pid_tag) DO NOTHING RETURNING *`,
  );
  return timed(seconds, () => {
    const tag = randomBytes(16);
    claim.get(tag, createHash('sha256').update(tag).digest(), 1);
  });
}

/** Claims per group-commit transaction when 50 connections redeem at once. */
const CLAIM_BATCH = 32;

function batchedClaims(db: Db, seconds: number): number {
  const claim = db.prepare(
    `INSERT INTO tickets (pid_tag, token_hash, issued_at) VALUES (?, ?, ?)
     ON CONFLICT (pid_tag) DO NOTHING RETURNING id`,
  );
  const batch = db.transaction((tags: Buffer[]) => {
    for (const tag of tags) claim.get(tag, createHash('sha256').update(tag).digest(), 1);
  });
  const perBatch = timed(seconds, () =>
    batch.immediate(Array.from({ length: CLAIM_BATCH }, () => randomBytes(16))),
  );
  return perBatch * CLAIM_BATCH;
}

/**
 * New invoices per second that SQLite alone stores: the invoice row and
 * its InvoiceCreated event through the service's own statements, `batch`
 * invoices to a transaction (the merchant gate's size), with nothing
 * around them: no HTTP, no signature, no address, no webhook attempt.
 */
export function measureInvoiceWrites(dir: string, seconds: number, batch: number): number {
  const db = openDatabase(join(dir, 'raw-invoices.db'));
  try {
    const { publicKey } = generateKeyPairSync('ed25519');
    const merchant = new MerchantStore(db).add(
      {
        name: 'raw',
        public_key: publicKey.export({ format: 'jwk' }).x,
        webhook_url: 'http://127.0.0.1:9/hook',
      },
      1,
    );
    const store = new InvoiceStore(db);
    const outbox = new Outbox(db);
    const write = db.transaction((count: number) => {
      for (let i = 0; i < count; i++) {
        const pid = randomBytes(8);
        const id = randomId('inv');
        store.insert({
          id,
          merchant_id: merchant.id,
          order_id: randomBytes(8).toString('hex'),
          idempotency_key: null,
          pid_tag: createHash('sha256').update(pid).digest().subarray(0, 16),
          payment_id: pid.toString('hex'),
          address: '4'.repeat(106),
          amount: 1_000_000_000_000n,
          description: null,
          metadata: '{}',
          confirmations: 10,
          created_at: 1,
          expires_at: 3_601,
          digest: 'd'.repeat(64),
        });
        outbox.enqueue({ merchantId: merchant.id, invoiceId: id, type: 'InvoiceCreated', metadata: {}, now: 1 });
      }
    });
    return timed(seconds, () => write.immediate(batch)) * batch;
  } finally {
    db.close();
  }
}

/** Raw Ed25519 verifications per second on this one thread, with a parsed KeyObject. */
export function measureVerifyRate(seconds: number): number {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // About the size of a signature base for an invoice request.
  const message = randomBytes(220);
  const signature = sign(null, message, privateKey);
  return timed(seconds, () => {
    if (!verify(null, message, publicKey, signature)) throw new Error('verify failed');
  });
}

/** Calls `step` until `seconds` pass and returns the calls per second. */
function timed(seconds: number, step: (i: number) => void): number {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let i = 0;
  while (true) {
    for (let j = 0; j < 64; j++) step(i++);
    const now = performance.now();
    if (now >= deadline) return i / ((now - started) / 1000);
  }
}
