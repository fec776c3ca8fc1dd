import { createHmac, randomBytes } from 'node:crypto';

import { type DeliveryRow, ENVELOPE_FIELDS, webhookIdOf } from '../webhooks/outbox.js';
import type { Db } from './database.js';

export type PurgeOptions = {
  /** Unix seconds. */
  now: number;
  /** Data older than this many days is purged. */
  retentionDays: number;
  /**
   * Blocks below the scan cursor that the monitor reads again on every
   * poll. A payment in them keeps its txid, which is what keeps a transfer
   * the wallet reports again from being recorded twice.
   */
  rescanBlocks: number;
};

export type PurgeResult = {
  /** Unix seconds: what settled or was recorded before this was purged. */
  cutoff: number;
  /** Webhook delivery bodies cut down to their event envelope. */
  webhookBodies: number;
  /** Redeemed payments whose txid was replaced by a one-way hash. */
  paymentTxids: number;
  /** Whether the WAL was checkpointed and emptied, so no old page is left in it. */
  checkpointed: boolean;
};

export const PURGED_TXID_PREFIX = 'purged:';
const DAY_S = 86_400;

/**
 * Purges what the service no longer needs once it is old, keeping what
 * balances and audits need:
 *
 * - a webhook delivery settled (delivered or given up) before the cutoff
 *   keeps its row, its attempts and an envelope body (ids, type, time and
 *   the event's true/false flags); the invoice metadata and the payment
 *   details it carried are dropped, so a redelivery still sends a
 *   well-formed event;
 * - a payment to a redeemed payment id that became final (confirmed,
 *   dust, locked, orphaned) before the cutoff, below the blocks the monitor
 *   rescans, keeps its amount, state, height and times, so every balance
 *   and total stays exact; its txid, the link to the chain, is replaced by
 *   an HMAC under a key drawn for this purge and then forgotten.
 *
 * Writes go through `secure_delete`, so SQLite zeroes what it frees, and
 * the WAL is checkpointed and truncated after, so the old values are gone
 * from the files, not only from the tables.
 */
export class Retention {
  readonly #db: Db;
  readonly #settledDeliveries;
  readonly #setBody;
  readonly #purgeablePayments;
  readonly #setTxid;
  readonly #cursor;

  constructor(db: Db) {
    this.#db = db;
    this.#settledDeliveries = db.prepare(
      `SELECT seq, id, merchant_id, invoice_id, type, body, original_id, created_at
       FROM webhook_deliveries WHERE coalesce(delivered_at, failed_at) < ?`,
    );
    this.#setBody = db.prepare('UPDATE webhook_deliveries SET body = ? WHERE seq = ?');
    this.#purgeablePayments = db.prepare(
      `SELECT id, txid FROM payments
       WHERE invoice_seq IS NULL
         AND state IN ('confirmed', 'dust', 'locked', 'orphaned')
         AND coalesce(confirmed_at, orphaned_at, first_seen_at) < @cutoff
         AND height > 0 AND height <= @lastFinalHeight
         AND txid NOT LIKE '${PURGED_TXID_PREFIX}%'
         AND pid_tag IN (SELECT pid_tag FROM tickets)`,
    );
    this.#setTxid = db.prepare('UPDATE payments SET txid = ? WHERE id = ?');
    this.#cursor = db.prepare("SELECT value FROM meta WHERE key = 'scan_height'").pluck();
  }

  purge(options: PurgeOptions): PurgeResult {
    checkOptions(options);
    const cutoff = options.now - options.retentionDays * DAY_S;
    const cursor = Number((this.#cursor.get() as string | undefined) ?? 0);
    const lastFinalHeight = cursor - options.rescanBlocks;

    this.#db.pragma('secure_delete = ON');
    const counts = this.#db
      .transaction(() => ({
        webhookBodies: this.#purgeBodies(cutoff),
        paymentTxids: this.#purgeTxids(cutoff, lastFinalHeight),
      }))
      .immediate();
    return { cutoff, ...counts, checkpointed: this.#checkpoint() };
  }

  #purgeBodies(cutoff: number): number {
    let changed = 0;
    for (const row of this.#settledDeliveries.all(cutoff) as DeliveryRow[]) {
      const body = envelopeOf(row);
      if (body === row.body) continue;
      this.#setBody.run(body, row.seq);
      changed++;
    }
    return changed;
  }

  #purgeTxids(cutoff: number, lastFinalHeight: number): number {
    const key = randomBytes(32);
    const rows = this.#purgeablePayments.all({ cutoff, lastFinalHeight }) as {
      id: number;
      txid: string;
    }[];
    for (const row of rows) {
      const hash = createHmac('sha256', key).update(row.txid).digest('hex');
      this.#setTxid.run(`${PURGED_TXID_PREFIX}${hash}`, row.id);
    }
    key.fill(0);
    return rows.length;
  }

  /** TRUNCATE waits (up to the busy timeout) for readers of old frames to move on. */
  #checkpoint(): boolean {
    const [result] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    return result !== undefined && result.busy === 0;
  }
}

/** The body a purged delivery keeps: its envelope, empty metadata, its flags. */
function envelopeOf(row: DeliveryRow): string {
  const previous = parseObject(row.body);
  const fallback: Record<(typeof ENVELOPE_FIELDS)[number], unknown> = {
    deliveryId: row.id,
    webhookId: webhookIdOf(row.merchant_id),
    originalDeliveryId: row.original_id ?? row.id,
    isRedelivery: row.original_id !== null,
    type: row.type,
    timestamp: row.created_at,
    storeId: row.merchant_id,
    invoiceId: row.invoice_id,
  };
  const body: Record<string, unknown> = {};
  for (const field of ENVELOPE_FIELDS) body[field] = previous[field] ?? fallback[field];
  body.metadata = {};
  for (const [field, value] of Object.entries(previous)) {
    if (typeof value === 'boolean' && !(field in body)) body[field] = value;
  }
  return JSON.stringify(body);
}

function parseObject(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // A body that is not an object keeps only what the row's columns say.
  }
  return {};
}

function checkOptions(options: PurgeOptions): void {
  const { now, retentionDays, rescanBlocks } = options;
  if (!Number.isSafeInteger(now) || now < 0) {
    throw new RangeError('now must be a non-negative integer of unix seconds');
  }
  if (!Number.isSafeInteger(retentionDays) || retentionDays < 1) {
    throw new RangeError('retentionDays must be a positive integer');
  }
  if (!Number.isSafeInteger(rescanBlocks) || rescanBlocks < 0) {
    throw new RangeError('rescanBlocks must be a non-negative integer');
  }
}
