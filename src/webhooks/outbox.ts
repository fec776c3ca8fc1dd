import { randomBytes } from 'node:crypto';

import { InvalidInputError, NotFoundError } from '../errors.js';
import type { Db } from '../storage/database.js';

/** The invoice events a merchant can receive, named as BTCPay Server names them. */
export const WEBHOOK_EVENT_TYPES = [
  'InvoiceCreated',
  'InvoiceReceivedPayment',
  'InvoiceProcessing',
  'InvoiceSettled',
  'InvoiceExpired',
  'InvoiceInvalid',
  'InvoicePaymentSettled',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export type EnqueueInput = {
  merchantId: string;
  invoiceId: string;
  /** One of WEBHOOK_EVENT_TYPES; checked at run time. */
  type: string;
  /** The invoice's metadata object, sent as it is. */
  metadata: Record<string, unknown>;
  /** Event-specific fields (`payment`, `overPaid`, ...); bigints become decimal strings. */
  extra?: Record<string, unknown>;
  /** Unix seconds. */
  now: number;
};

export type ListQuery = {
  merchantId?: string;
  invoiceId?: string;
  status?: DeliveryStatus;
  limit: number;
  /** Opaque: the `nextCursor` of the previous page. */
  cursor?: string;
};

export type DeliverySummary = {
  id: string;
  merchantId: string;
  invoiceId: string;
  type: string;
  status: DeliveryStatus;
  isRedelivery: boolean;
  originalDeliveryId: string;
  createdAt: number;
  /** Milliseconds since the epoch; null once the delivery is settled. */
  nextAttemptAtMs: number | null;
  deliveredAt: number | null;
  failedAt: number | null;
  attemptCount: number;
  lastStatus: number | null;
  lastError: string | null;
};

export type DeliveryAttempt = {
  at: number;
  status: number | null;
  error: string | null;
  durationMs: number;
};

export type DeliveryDetail = DeliverySummary & { attempts: DeliveryAttempt[] };

export type DeliveryPage = { deliveries: DeliverySummary[]; nextCursor: string | null };

/** Fields of a delivery body that name the event and nothing about the customer. */
export const ENVELOPE_FIELDS = [
  'deliveryId',
  'webhookId',
  'originalDeliveryId',
  'isRedelivery',
  'type',
  'timestamp',
  'storeId',
  'invoiceId',
] as const;

/** Fields every delivery body carries; `extra` may not replace them. */
const RESERVED_FIELDS = new Set<string>([...ENVELOPE_FIELDS, 'metadata']);

/** A webhook_deliveries row as stored. */
export type DeliveryRow = {
  seq: number;
  id: string;
  merchant_id: string;
  invoice_id: string;
  type: string;
  body: string;
  original_id: string | null;
  created_at: number;
  next_attempt_at_ms: number;
  attempts: number;
  delivered_at: number | null;
  failed_at: number | null;
  last_status: number | null;
  last_error: string | null;
};

const SUMMARY_COLUMNS = `d.*,
  (SELECT status FROM webhook_attempts WHERE delivery_id = d.id ORDER BY id DESC LIMIT 1)
    AS last_status,
  (SELECT error FROM webhook_attempts WHERE delivery_id = d.id ORDER BY id DESC LIMIT 1)
    AS last_error`;

const LIST_FILTERS = `(@merchantId IS NULL OR d.merchant_id = @merchantId)
  AND (@invoiceId IS NULL OR d.invoice_id = @invoiceId)
  AND (@status IS NULL
    OR (@status = 'pending' AND d.delivered_at IS NULL AND d.failed_at IS NULL)
    OR (@status = 'delivered' AND d.delivered_at IS NOT NULL)
    OR (@status = 'failed' AND d.failed_at IS NOT NULL))
  AND d.seq < @before
ORDER BY d.seq DESC LIMIT @limit`;

/**
 * The webhook outbox. `enqueue` is synchronous so that an invoice's state
 * change and the event announcing it commit in one transaction: either the
 * merchant will hear of the change or the change did not happen. The
 * dispatcher reads the same table and delivers what is due.
 */
export class Outbox {
  readonly #insert;
  readonly #byId;
  readonly #attemptsOf;
  readonly #listByInvoice;
  readonly #listByMerchant;
  readonly #listAll;

  constructor(db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO webhook_deliveries
         (id, merchant_id, invoice_id, type, body, original_id, created_at, next_attempt_at_ms)
       VALUES (@id, @merchantId, @invoiceId, @type, @body, @originalId, @now, @now * 1000)`,
    );
    this.#byId = db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM webhook_deliveries d WHERE d.id = ?`);
    this.#attemptsOf = db.prepare(
      `SELECT at, status, error, duration_ms FROM webhook_attempts
       WHERE delivery_id = ? ORDER BY id`,
    );
    // One statement per index that can drive the listing, so a filtered
    // page walks its index rather than the whole table.
    this.#listByInvoice = db.prepare(
      `SELECT ${SUMMARY_COLUMNS} FROM webhook_deliveries d
       WHERE d.invoice_id = @invoiceId AND ${LIST_FILTERS}`,
    );
    this.#listByMerchant = db.prepare(
      `SELECT ${SUMMARY_COLUMNS} FROM webhook_deliveries d
       WHERE d.merchant_id = @merchantId AND ${LIST_FILTERS}`,
    );
    this.#listAll = db.prepare(
      `SELECT ${SUMMARY_COLUMNS} FROM webhook_deliveries d WHERE ${LIST_FILTERS}`,
    );
  }

  /**
   * Records an event for delivery and returns the delivery id. Call it
   * inside the transaction that makes the change the event announces.
   */
  enqueue(input: EnqueueInput): string {
    checkEnqueueInput(input);
    const id = newDeliveryId();
    const body = serializeBody({
      deliveryId: id,
      webhookId: webhookIdOf(input.merchantId),
      originalDeliveryId: id,
      isRedelivery: false,
      type: input.type,
      timestamp: input.now,
      storeId: input.merchantId,
      invoiceId: input.invoiceId,
      metadata: input.metadata,
      ...input.extra,
    });
    this.#insert.run({
      id,
      merchantId: input.merchantId,
      invoiceId: input.invoiceId,
      type: input.type,
      body,
      originalId: null,
      now: input.now,
    });
    return id;
  }

  /**
   * Queues the event of an earlier delivery again under a new delivery id,
   * marked as a redelivery of the first delivery of that event and stamped
   * with the time of the redelivery. Like any delivery, it waits behind
   * the invoice's earlier events that are still open.
   */
  redeliver(id: string, now: number): string {
    const row = this.#byId.get(id) as DeliveryRow | undefined;
    if (!row) throw new NotFoundError(`no webhook delivery ${id}`, 'delivery_not_found');

    const newId = newDeliveryId();
    const originalId = row.original_id ?? row.id;
    const previous = JSON.parse(row.body) as Record<string, unknown>;
    const body = serializeBody({
      ...previous,
      deliveryId: newId,
      originalDeliveryId: originalId,
      isRedelivery: true,
      timestamp: now,
    });
    this.#insert.run({
      id: newId,
      merchantId: row.merchant_id,
      invoiceId: row.invoice_id,
      type: row.type,
      body,
      originalId,
      now,
    });
    return newId;
  }

  get(id: string): DeliveryDetail | undefined {
    const row = this.#byId.get(id) as DeliveryRow | undefined;
    if (!row) return undefined;
    const attempts = this.#attemptsOf.all(id) as {
      at: number;
      status: number | null;
      error: string | null;
      duration_ms: number;
    }[];
    return {
      ...summaryOf(row),
      attempts: attempts.map((a) => ({
        at: a.at,
        status: a.status,
        error: a.error,
        durationMs: a.duration_ms,
      })),
    };
  }

  /** Newest first. */
  list(query: ListQuery): DeliveryPage {
    const params = {
      merchantId: query.merchantId ?? null,
      invoiceId: query.invoiceId ?? null,
      status: query.status ?? null,
      before: parseCursor(query.cursor),
      limit: query.limit,
    };
    const statement =
      params.invoiceId !== null
        ? this.#listByInvoice
        : params.merchantId !== null
          ? this.#listByMerchant
          : this.#listAll;
    const rows = statement.all(params) as DeliveryRow[];
    const last = rows.at(-1);
    return {
      deliveries: rows.map(summaryOf),
      nextCursor: rows.length === query.limit && last ? String(last.seq) : null,
    };
  }
}

/** The id BTCPay-style bodies carry as `webhookId`: one webhook per merchant. */
export function webhookIdOf(merchantId: string): string {
  return `wh_${merchantId}`;
}

const DELIVERY_ID = /^wd_[A-Za-z0-9_-]{22}$/;

export function isDeliveryId(value: string): boolean {
  return DELIVERY_ID.test(value);
}

function newDeliveryId(): string {
  return `wd_${randomBytes(16).toString('base64url')}`;
}

function checkEnqueueInput(input: EnqueueInput): void {
  if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(input.type)) {
    const accepted = WEBHOOK_EVENT_TYPES.join(', ');
    throw new RangeError(`type must be one of ${accepted}, got ${input.type}`);
  }
  if (!isPlainObject(input.metadata)) {
    throw new TypeError('metadata must be a plain object');
  }
  if (input.extra !== undefined && !isPlainObject(input.extra)) {
    throw new TypeError('extra must be a plain object');
  }
  const clash = Object.keys(input.extra ?? {}).find((key) => RESERVED_FIELDS.has(key));
  if (clash !== undefined) {
    throw new RangeError(`extra must not set the reserved field ${clash}`);
  }
  if (!Number.isSafeInteger(input.now) || input.now < 0) {
    throw new RangeError('now must be a non-negative integer of unix seconds');
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Money travels as decimal strings: a bigint anywhere in the body is written as one. */
function serializeBody(body: Record<string, unknown>): string {
  return JSON.stringify(body, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
}

function parseCursor(cursor: string | undefined): number {
  if (cursor === undefined) return Number.MAX_SAFE_INTEGER;
  if (!/^[1-9][0-9]{0,15}$/.test(cursor)) {
    throw new InvalidInputError(
      'cursor must be the next_cursor of an earlier page',
      'invalid_cursor',
    );
  }
  return Number(cursor);
}

function statusOf(row: DeliveryRow): DeliveryStatus {
  if (row.delivered_at !== null) return 'delivered';
  if (row.failed_at !== null) return 'failed';
  return 'pending';
}

function summaryOf(row: DeliveryRow): DeliverySummary {
  const status = statusOf(row);
  return {
    id: row.id,
    merchantId: row.merchant_id,
    invoiceId: row.invoice_id,
    type: row.type,
    status,
    isRedelivery: row.original_id !== null,
    originalDeliveryId: row.original_id ?? row.id,
    createdAt: row.created_at,
    nextAttemptAtMs: status === 'pending' ? row.next_attempt_at_ms : null,
    deliveredAt: row.delivered_at,
    failedAt: row.failed_at,
    attemptCount: row.attempts,
    lastStatus: row.last_status,
    lastError: row.last_error,
  };
}
