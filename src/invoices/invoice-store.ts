import type { Db } from '../storage/database.js';
import type { AdditionalStatus, InvoiceStatus } from './invoice-status.js';

export type InvoiceRow = {
  seq: number;
  id: string;
  merchant_id: string;
  order_id: string | null;
  idempotency_key: string | null;
  pid_tag: Buffer;
  payment_id: string;
  address: string;
  amount: bigint;
  description: string | null;
  metadata: string;
  confirmations: number;
  status: InvoiceStatus;
  additional_status: AdditionalStatus;
  created_at: number;
  expires_at: number;
  digest: string;
};

export type InvoicePaymentRow = {
  id: number;
  txid: string;
  amount: bigint;
  height: number;
  state: string;
  first_seen_at: number;
  confirmed_at: number | null;
};

export type NewInvoiceRow = Omit<InvoiceRow, 'seq' | 'status' | 'additional_status'>;

/** Invoices and the payments credited to them. */
export class InvoiceStore {
  readonly #insert;
  readonly #byId;
  readonly #byOrderId;
  readonly #byIdempotencyKey;
  readonly #bySeq;
  readonly #byTag;
  readonly #list;
  readonly #listByStatus;
  readonly #payments;
  readonly #setStatus;
  readonly #due;

  constructor(db: Db) {
    const all = (sql: string) => db.prepare(sql).safeIntegers(true);
    this.#insert = all(
      `INSERT INTO invoices (id, merchant_id, order_id, idempotency_key, pid_tag, payment_id, address,
         amount, description, metadata, confirmations, status, created_at, expires_at, digest)
       VALUES (@id, @merchant_id, @order_id, @idempotency_key, @pid_tag, @payment_id, @address,
         @amount, @description, @metadata, @confirmations, 'New', @created_at, @expires_at, @digest)
       ON CONFLICT DO NOTHING RETURNING *`,
    );
    this.#byId = all('SELECT * FROM invoices WHERE id = ?');
    this.#byOrderId = all('SELECT * FROM invoices WHERE merchant_id = ? AND order_id = ?');
    this.#byIdempotencyKey = all('SELECT * FROM invoices WHERE merchant_id = ? AND idempotency_key = ?');
    this.#bySeq = all('SELECT * FROM invoices WHERE seq = ?');
    this.#byTag = db.prepare('SELECT seq, confirmations FROM invoices WHERE pid_tag = ?');
    this.#list = all('SELECT * FROM invoices WHERE merchant_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?');
    this.#listByStatus = all(
      'SELECT * FROM invoices WHERE merchant_id = ? AND status = ? AND seq < ? ORDER BY seq DESC LIMIT ?',
    );
    this.#payments = all(
      `SELECT id, txid, amount, height, state, first_seen_at, confirmed_at FROM payments
       WHERE invoice_seq = ? ORDER BY id`,
    );
    this.#setStatus = db.prepare('UPDATE invoices SET status = ?, additional_status = ? WHERE seq = ?');
    this.#due = all("SELECT * FROM invoices WHERE status = 'New' AND expires_at <= ? LIMIT 1000");
  }

  /** Inserts unless the order id or idempotency key is taken; then undefined. */
  insert(row: NewInvoiceRow): InvoiceRow | undefined {
    const inserted = this.#insert.get(row) as Record<string, unknown> | undefined;
    return inserted && toInvoice(inserted);
  }

  byId(id: string): InvoiceRow | undefined {
    return maybe(this.#byId.get(id));
  }

  bySeq(seq: number): InvoiceRow | undefined {
    return maybe(this.#bySeq.get(seq));
  }

  byOrderId(merchantId: string, orderId: string): InvoiceRow | undefined {
    return maybe(this.#byOrderId.get(merchantId, orderId));
  }

  byIdempotencyKey(merchantId: string, key: string): InvoiceRow | undefined {
    return maybe(this.#byIdempotencyKey.get(merchantId, key));
  }

  /** The invoice a payment id belongs to, for the monitor's policy. */
  byTag(pidTag: Buffer): { seq: number; confirmations: number } | undefined {
    return this.#byTag.get(pidTag) as { seq: number; confirmations: number } | undefined;
  }

  /** A page of a merchant's invoices, newest first, before the cursor `beforeSeq`. */
  list(merchantId: string, status: InvoiceStatus | undefined, beforeSeq: number, limit: number): InvoiceRow[] {
    const rows = status
      ? this.#listByStatus.all(merchantId, status, beforeSeq, limit)
      : this.#list.all(merchantId, beforeSeq, limit);
    return (rows as Record<string, unknown>[]).map(toInvoice);
  }

  payments(seq: number): InvoicePaymentRow[] {
    return (this.#payments.all(seq) as Record<string, unknown>[]).map((row) => ({
      id: Number(row.id),
      txid: row.txid as string,
      amount: row.amount as bigint,
      height: Number(row.height),
      state: row.state as string,
      first_seen_at: Number(row.first_seen_at),
      confirmed_at: row.confirmed_at === null ? null : Number(row.confirmed_at),
    }));
  }

  setStatus(seq: number, status: InvoiceStatus, additional: AdditionalStatus): void {
    this.#setStatus.run(status, additional, seq);
  }

  dueForExpiry(now: number): InvoiceRow[] {
    return (this.#due.all(now) as Record<string, unknown>[]).map(toInvoice);
  }
}

function maybe(row: unknown): InvoiceRow | undefined {
  return row === undefined ? undefined : toInvoice(row as Record<string, unknown>);
}

function toInvoice(row: Record<string, unknown>): InvoiceRow {
  return {
    ...(row as unknown as InvoiceRow),
    seq: Number(row.seq),
    confirmations: Number(row.confirmations),
    created_at: Number(row.created_at),
    expires_at: Number(row.expires_at),
  };
}
