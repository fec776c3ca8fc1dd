import { randomBytes } from 'node:crypto';

import { ConflictError, NotFoundError, UnavailableError } from '../errors.js';
import { randomId } from '../ids.js';
import { integratedAddressMaker } from '../monero/address.js';
import type { Db } from '../storage/database.js';
import { GroupCommit, ItemFailure } from '../storage/group-commit.js';
import type { PaymentEvent, PaymentRow } from '../storage/payment-store.js';
import type { Secrets } from '../tickets/secrets.js';
import type { Outbox } from '../webhooks/outbox.js';
import { canonicalJson } from './canonical-json.js';
import type { InvoiceInput } from './invoice-input.js';
import { type InvoiceStatus, type Standing, standingOf } from './invoice-status.js';
import type { InvoiceRow, InvoiceStore, NewInvoiceRow } from './invoice-store.js';

export type InvoiceServiceOptions = {
  db: Db;
  store: InvoiceStore;
  outbox: Outbox;
  secrets: Secrets;
  digest(text: string): Promise<string>;
  primaryAddress(): string | undefined;
  defaultConfirmations: number;
  defaultExpirySeconds: number;
  /** Called after a transaction that wrote webhook events commits. */
  onEventsCommitted(): void;
  now?: () => number;
};

export type CreateResult = { invoice: InvoiceRow; created: boolean };

/**
 * Merchant invoices: creation, lookups, cancellation, and the status that
 * follows from payments. Every status change writes its webhook events in
 * the same transaction.
 */
export class InvoiceService {
  readonly #options: InvoiceServiceOptions;
  readonly #store: InvoiceStore;
  readonly #now: () => number;
  readonly #inserts: GroupCommit<NewInvoiceRow, InvoiceRow | undefined>;
  /** The primary address last seen, decoded for building integrated addresses. */
  #addresses: { primary: string; make(pid: Uint8Array): string } | undefined;

  constructor(options: InvoiceServiceOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#inserts = this.#groupInserts(options.db);
  }

  async create(merchantId: string, input: InvoiceInput, idempotencyKey: string | null): Promise<CreateResult> {
    const existing = this.#existing(merchantId, input.orderId, idempotencyKey);
    if (existing) return { invoice: existing, created: false };

    const row = this.#draft(merchantId, input, idempotencyKey);
    row.digest = await this.#options.digest(canonicalInvoice(row));

    const inserted = await this.#inserts.submit(row);
    if (inserted) {
      this.#options.onEventsCommitted();
      return { invoice: inserted, created: true };
    }
    // A concurrent request with the same order id or key won the insert.
    const winner = this.#existing(merchantId, input.orderId, idempotencyKey);
    if (!winner) throw new ConflictError('invoice_conflict', 'the invoice could not be created; retry');
    return { invoice: winner, created: false };
  }

  /**
   * New invoices and their InvoiceCreated events, committed in groups
   * (storage/group-commit.ts). Each invoice has a savepoint of its own, so
   * one that fails leaves the others of its group to commit.
   */
  #groupInserts(db: Db): GroupCommit<NewInvoiceRow, InvoiceRow | undefined> {
    const insertOne = db.transaction((row: NewInvoiceRow) => {
      const invoice = this.#store.insert(row);
      if (invoice) this.#emit(invoice, 'InvoiceCreated', {});
      return invoice;
    });
    const insertAll = db.transaction((rows: readonly NewInvoiceRow[]) =>
      rows.map((row) => {
        try {
          return insertOne(row);
        } catch (err) {
          return new ItemFailure(err);
        }
      }),
    );
    return new GroupCommit((rows) => insertAll.immediate(rows));
  }

  get(merchantId: string, id: string): InvoiceRow {
    const invoice = this.#store.byId(id);
    if (!invoice || invoice.merchant_id !== merchantId) throw new NotFoundError('unknown invoice');
    return invoice;
  }

  /** For the checkout page, which anyone holding the unguessable id may see. */
  getPublic(id: string): InvoiceRow {
    const invoice = this.#store.byId(id);
    if (!invoice) throw new NotFoundError('unknown invoice');
    return invoice;
  }

  list(merchantId: string, status: InvoiceStatus | undefined, cursor: number | undefined, limit: number) {
    const rows = this.#store.list(merchantId, status, cursor ?? Number.MAX_SAFE_INTEGER, limit + 1);
    const page = rows.slice(0, limit);
    const next = rows.length > limit ? page.at(-1)!.seq : null;
    return { invoices: page, nextCursor: next };
  }

  cancel(merchantId: string, id: string): InvoiceRow {
    const invoice = this.get(merchantId, id);
    const result = this.#options.db.transaction(() => {
      const current = this.#store.bySeq(invoice.seq)!;
      if (current.status === 'Invalid') return current;
      if (current.status !== 'New' && current.status !== 'Expired') {
        throw new ConflictError('invoice_not_cancellable', `a ${current.status} invoice cannot be cancelled`);
      }
      this.#store.setStatus(current.seq, 'Invalid', current.additional_status);
      this.#emit(current, 'InvoiceInvalid', { manuallyMarked: true });
      return this.#store.bySeq(current.seq)!;
    }).immediate();
    this.#options.onEventsCommitted();
    return result;
  }

  payments(invoice: InvoiceRow) {
    return this.#store.payments(invoice.seq);
  }

  /** The monitor's policy hooks: which invoice a payment id belongs to. */
  invoiceOf(pidTag: Buffer): { seq: number; confirmations: number } | undefined {
    return this.#store.byTag(pidTag);
  }

  /**
   * Follows the payments a scan changed. Runs inside the scan's
   * transaction, so the invoice's new status and its webhook events commit
   * together with the payments.
   */
  onPaymentEvents(events: readonly PaymentEvent[], now: number): void {
    const touched = new Map<number, PaymentEvent[]>();
    for (const event of events) {
      const seq = event.payment.invoice_seq;
      if (seq === null) continue;
      touched.set(seq, [...(touched.get(seq) ?? []), event]);
    }
    for (const [seq, invoiceEvents] of touched) this.#follow(seq, invoiceEvents, now);
  }

  /** Marks invoices past their expiry as Expired; returns how many. */
  expireDue(): number {
    const now = this.#now();
    const count = this.#options.db.transaction(() => {
      const due = this.#store.dueForExpiry(now);
      for (const invoice of due) this.#follow(invoice.seq, [], now);
      return due.length;
    }).immediate();
    if (count > 0) this.#options.onEventsCommitted();
    return count;
  }

  /**
   * Brings one invoice up to date with its payments, announcing changes in
   * the order a merchant expects even when one scan both sees and confirms
   * a payment: arrivals and the status they cause first, then
   * confirmations and the status they cause.
   */
  #follow(seq: number, events: readonly PaymentEvent[], now: number): void {
    const invoice = this.#store.bySeq(seq)!;
    const payments = this.#store.payments(seq);
    const confirmedNow = new Set(events.filter((e) => e.kind === 'confirmed').map((e) => e.payment.id));

    this.#announcePayments(invoice, events, ['seen', 'reappeared'], 'InvoiceReceivedPayment');
    const beforeConfirmations = payments.map((p) => (confirmedNow.has(p.id) ? { ...p, state: 'pending' } : p));
    const arrived = standingOf(invoice, beforeConfirmations, now);
    this.#announceStatus(invoice, invoice.status, arrived);

    this.#announcePayments(invoice, events, ['confirmed'], 'InvoicePaymentSettled');
    const final = standingOf({ ...invoice, status: arrived.status }, payments, now);
    this.#announceStatus(invoice, arrived.status, final);

    if (final.status !== invoice.status || final.additional !== invoice.additional_status) {
      this.#store.setStatus(seq, final.status, final.additional);
    }
  }

  #announcePayments(
    invoice: InvoiceRow,
    events: readonly PaymentEvent[],
    kinds: PaymentEvent['kind'][],
    type: string,
  ): void {
    for (const { kind, payment } of events) {
      if (!kinds.includes(kind)) continue;
      const afterExpiration = payment.first_seen_at >= invoice.expires_at;
      this.#emit(invoice, type, { afterExpiration, payment: paymentJson(payment) });
    }
  }

  #announceStatus(invoice: InvoiceRow, from: InvoiceStatus, to: Standing): void {
    if (to.status === from) return;
    const overPaid = to.additional === 'PaidOver';
    if (to.status === 'Processing' || (to.status === 'Settled' && from !== 'Processing')) {
      this.#emit(invoice, 'InvoiceProcessing', { overPaid });
    }
    if (to.status === 'Settled') this.#emit(invoice, 'InvoiceSettled', { overPaid });
    if (to.status === 'Expired') {
      const partiallyPaid = to.received > 0n && to.received < invoice.amount;
      this.#emit(invoice, 'InvoiceExpired', { partiallyPaid });
    }
    if (to.status === 'Invalid') this.#emit(invoice, 'InvoiceInvalid', { manuallyMarked: false });
  }

  #emit(invoice: InvoiceRow, type: string, extra: Record<string, unknown>): void {
    this.#options.outbox.enqueue({
      merchantId: invoice.merchant_id,
      invoiceId: invoice.id,
      type,
      metadata: JSON.parse(invoice.metadata) as Record<string, unknown>,
      extra,
      now: this.#now(),
    });
  }

  #integratedAddress(primary: string, pid: Uint8Array): string {
    if (this.#addresses?.primary !== primary) {
      this.#addresses = { primary, make: integratedAddressMaker(primary) };
    }
    return this.#addresses.make(pid);
  }

  #existing(merchantId: string, orderId: string | null, key: string | null): InvoiceRow | undefined {
    if (key !== null) {
      const byKey = this.#store.byIdempotencyKey(merchantId, key);
      if (byKey) return byKey;
    }
    return orderId === null ? undefined : this.#store.byOrderId(merchantId, orderId);
  }

  #draft(merchantId: string, input: InvoiceInput, idempotencyKey: string | null) {
    const primary = this.#options.primaryAddress();
    if (!primary) throw new UnavailableError('the wallet address is not known yet; try again shortly');
    const pid = randomBytes(8);
    const now = this.#now();
    return {
      id: randomId('inv'),
      merchant_id: merchantId,
      order_id: input.orderId,
      idempotency_key: idempotencyKey,
      pid_tag: this.#options.secrets.pidTag(pid),
      payment_id: pid.toString('hex'),
      address: this.#integratedAddress(primary, pid),
      amount: input.amount,
      description: input.description,
      metadata: JSON.stringify(input.metadata),
      confirmations: input.confirmations ?? this.#options.defaultConfirmations,
      created_at: now,
      expires_at: now + (input.expiresIn ?? this.#options.defaultExpirySeconds),
      digest: '',
    };
  }
}

/**
 * The canonical form a merchant can recompute to check an invoice: the
 * fields fixed at creation, sorted keys, no whitespace; its SHA-256 in hex
 * is the invoice's `digest`.
 */
export function canonicalInvoice(row: Omit<InvoiceRow, 'seq' | 'status' | 'additional_status' | 'digest'>): string {
  return canonicalJson({
    address: row.address,
    amount_atomic: row.amount.toString(),
    confirmations: row.confirmations,
    created_at: row.created_at,
    description: row.description,
    expires_at: row.expires_at,
    id: row.id,
    merchant_id: row.merchant_id,
    metadata: JSON.parse(row.metadata) as unknown,
    order_id: row.order_id,
    payment_id: row.payment_id,
  });
}

function paymentJson(payment: PaymentRow) {
  return {
    id: `${payment.txid}-${payment.subaddr_major}-${payment.subaddr_minor}`,
    value: payment.amount.toString(),
    receivedDate: payment.first_seen_at,
    status: payment.state,
  };
}
