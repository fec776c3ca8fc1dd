import { createHmac } from 'node:crypto';

import type { Logger } from 'pino';

import type { Db } from '../storage/database.js';
import { GroupCommit, ItemFailure } from '../storage/group-commit.js';
import { OutboundHttpError, parseProxyUrl, postJson } from './outbound-http.js';

/**
 * When a failed delivery is tried again: `firstDelayMs` after the first
 * failure, doubling up to `maxDelayMs`, each delay drawn at random from its
 * upper half so that deliveries that failed together do not retry
 * together; a delivery still failing `giveUpAfterMs` after it was queued is
 * marked failed.
 */
export type RetrySchedule = {
  firstDelayMs: number;
  maxDelayMs: number;
  giveUpAfterMs: number;
};

export type WebhookDispatcherOptions = {
  db: Db;
  logger: Logger;
  /** `socks5h://host:port` of the Tor SOCKS port; empty or absent for direct connections. */
  proxy?: string;
  /** Never connect directly: with no proxy, every attempt fails and is retried. */
  torOnly: boolean;
  /** Whole-attempt bound, proxy handshake to response. */
  timeoutMs: number;
  /** Clock in milliseconds since the epoch. */
  now?: () => number;
  /** Longest sleep between looks at the outbox when nothing is scheduled sooner. */
  pollIntervalMs?: number;
  /** Attempts in flight at once, each for a different invoice. */
  concurrency?: number;
  retrySchedule?: Partial<RetrySchedule>;
  /** How long `close()` lets in-flight attempts run before aborting them. */
  closeTimeoutMs?: number;
};

/** Defaults, each in its unit. */
export const DISPATCHER_DEFAULTS = {
  pollIntervalMs: 5_000,
  concurrency: 8,
  closeTimeoutMs: 5_000,
  retrySchedule: {
    firstDelayMs: 10_000,
    maxDelayMs: 3_600_000,
    giveUpAfterMs: 3 * 86_400_000,
  },
} as const;

type DueRow = {
  id: string;
  merchant_id: string;
  invoice_id: string;
  type: string;
  body: string;
  created_at: number;
  attempts: number;
  webhook_url: string;
  webhook_secret: string;
};

export type Outcome = { status: number | null; error: string | null };
export type Verdict = 'delivered' | 'retry' | 'refused';

/**
 * Delivers the outbox. Deliveries of one invoice go out in the order they
 * were queued, one at a time: a later event waits while an earlier one is
 * neither delivered nor failed. Different invoices go out concurrently, up
 * to `concurrency`. Every attempt is recorded, and everything the
 * dispatcher knows lives in SQLite, so a restart carries on where the last
 * run stopped. Delivery is at least once: a merchant that answered but
 * whose answer was lost sees the same delivery id again.
 */
export class WebhookDispatcher {
  readonly #logger: Logger;
  readonly #proxy: string | undefined;
  readonly #torOnly: boolean;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #pollIntervalMs: number;
  readonly #concurrency: number;
  readonly #retry: RetrySchedule;
  readonly #closeTimeoutMs: number;
  readonly #due;
  readonly #nextDue;
  readonly #records: GroupCommit<AttemptRecord, true>;
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #abort = new AbortController();
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #kickQueued = false;

  constructor(options: WebhookDispatcherOptions) {
    // Defaults.
    const retry = { ...DISPATCHER_DEFAULTS.retrySchedule, ...options.retrySchedule };
    const pollIntervalMs = options.pollIntervalMs ?? DISPATCHER_DEFAULTS.pollIntervalMs;
    const concurrency = options.concurrency ?? DISPATCHER_DEFAULTS.concurrency;
    const closeTimeoutMs = options.closeTimeoutMs ?? DISPATCHER_DEFAULTS.closeTimeoutMs;

    // Validation.
    if (typeof options.torOnly !== 'boolean') throw new TypeError('torOnly must be a boolean');
    checkInteger('timeoutMs', options.timeoutMs, 1, 600_000);
    checkInteger('pollIntervalMs', pollIntervalMs, 10, 3_600_000);
    checkInteger('concurrency', concurrency, 1, 1_000);
    checkInteger('closeTimeoutMs', closeTimeoutMs, 0, 600_000);
    checkInteger('retrySchedule.firstDelayMs', retry.firstDelayMs, 1, 86_400_000);
    checkInteger('retrySchedule.maxDelayMs', retry.maxDelayMs, retry.firstDelayMs, 86_400_000);
    checkInteger('retrySchedule.giveUpAfterMs', retry.giveUpAfterMs, 0, 365 * 86_400_000);
    if (options.proxy) parseProxyUrl(options.proxy);

    // Interpretation.
    this.#logger = options.logger;
    this.#proxy = options.proxy || undefined;
    this.#torOnly = options.torOnly;
    this.#timeoutMs = options.timeoutMs;
    this.#now = options.now ?? Date.now;
    this.#pollIntervalMs = pollIntervalMs;
    this.#concurrency = concurrency;
    this.#retry = retry;
    this.#closeTimeoutMs = closeTimeoutMs;

    // Statements.
    const { db } = options;
    this.#due = db.prepare(
      `SELECT d.id, d.merchant_id, d.invoice_id, d.type, d.body, d.created_at, d.attempts,
              m.webhook_url, m.webhook_secret
       FROM webhook_deliveries d JOIN merchants m ON m.id = d.merchant_id
       WHERE d.delivered_at IS NULL AND d.failed_at IS NULL
         AND d.next_attempt_at_ms <= @now AND m.disabled_at IS NULL
         AND NOT EXISTS (
           SELECT 1 FROM webhook_deliveries e
           WHERE e.invoice_id = d.invoice_id AND e.merchant_id = d.merchant_id
             AND e.seq < d.seq AND e.delivered_at IS NULL AND e.failed_at IS NULL)
       ORDER BY d.next_attempt_at_ms, d.seq
       LIMIT ${concurrency}`,
    );
    this.#nextDue = db
      .prepare(
        `SELECT min(next_attempt_at_ms) FROM webhook_deliveries
         WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at_ms > ?`,
      )
      .pluck();
    const insertAttempt = db.prepare(
      `INSERT INTO webhook_attempts (delivery_id, at, status, error, duration_ms)
       VALUES (@id, @at, @status, @error, @durationMs)`,
    );
    const settle = db.prepare(
      `UPDATE webhook_deliveries SET attempts = attempts + 1,
         delivered_at = @deliveredAt, failed_at = @failedAt, next_attempt_at_ms = @nextAttemptAtMs
       WHERE id = @id`,
    );
    // While an invoice's first open event waits for its retry, its later
    // events wait at least as long. Keeping them out of the due set spares
    // the due query from stepping over them on every pass while a merchant
    // is down.
    const deferLater = db.prepare(
      `UPDATE webhook_deliveries SET next_attempt_at_ms = @nextAttemptAtMs
       WHERE merchant_id = @merchantId AND invoice_id = @invoiceId
         AND seq > (SELECT seq FROM webhook_deliveries WHERE id = @id)
         AND delivered_at IS NULL AND failed_at IS NULL
         AND next_attempt_at_ms < @nextAttemptAtMs`,
    );
    const recordOne = db.transaction((row: AttemptRecord) => {
      insertAttempt.run(row);
      settle.run(row);
      if (row.deliveredAt === null && row.failedAt === null) deferLater.run(row);
    });
    // Attempts that end in one turn are recorded in one transaction, each
    // in a savepoint of its own (storage/group-commit.ts).
    const recordAll = db.transaction((rows: readonly AttemptRecord[]) =>
      rows.map((row) => {
        try {
          recordOne(row);
          return true;
        } catch (err) {
          return new ItemFailure(err);
        }
      }),
    );
    this.#records = new GroupCommit((rows) => recordAll.immediate(rows));
  }

  start(): void {
    if (this.#running || this.#abort.signal.aborted) return;
    this.#running = true;
    this.#pump();
  }

  /** Looks at the outbox now; call it after a transaction that queued events commits. */
  kick(): void {
    if (!this.#running || this.#kickQueued) return;
    this.#kickQueued = true;
    setImmediate(() => {
      this.#kickQueued = false;
      this.#pump();
    });
  }

  /**
   * Stops taking new work and waits for the attempts in flight, aborting
   * them after `closeTimeoutMs`. An aborted attempt is recorded and stays
   * pending, so the next run sends it again.
   */
  async close(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    const grace = setTimeout(() => this.#abort.abort(), this.#closeTimeoutMs);
    await Promise.allSettled(this.#inFlight.values());
    clearTimeout(grace);
    this.#abort.abort();
  }

  /** Starts what is due and free to go, then sleeps until the next due time. */
  #pump(): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    let wakeInMs = this.#pollIntervalMs;
    try {
      const now = this.#now();
      const free = this.#concurrency - this.#inFlight.size;
      if (free > 0) this.#startDue(now, free);
      const next = this.#nextDue.get(now) as number | null;
      if (next !== null) wakeInMs = Math.min(wakeInMs, Math.max(0, next - now));
    } catch (err) {
      this.#logger.error({ err }, 'webhook outbox could not be read');
    }
    this.#timer = setTimeout(() => this.#pump(), wakeInMs);
    this.#timer.unref();
  }

  #startDue(now: number, free: number): void {
    // Rows in flight are still due, so the query asks for `concurrency`
    // rows: the free slots plus those in flight. A literal LIMIT, since
    // SQLite prepares such a statement again whenever a bound LIMIT changes.
    const rows = this.#due.all({ now }) as DueRow[];
    for (const row of rows) {
      if (free === 0) break;
      if (this.#inFlight.has(row.id)) continue;
      free--;
      // After a failed record the row is still due; leaving it to the
      // timer keeps a broken database from turning this into a busy loop.
      const attempt = this.#attempt(row)
        .catch((err: unknown) => {
          this.#logger.error({ err, deliveryId: row.id }, 'webhook attempt failed unexpectedly');
          return false;
        })
        .then((recorded) => {
          this.#inFlight.delete(row.id);
          // One look at the outbox for all the attempts that end in a turn.
          if (recorded) this.kick();
        });
      this.#inFlight.set(row.id, attempt);
    }
  }

  /** Resolves true once the attempt is recorded, false if the record failed. */
  async #attempt(row: DueRow): Promise<boolean> {
    const startedAt = this.#now();
    const started = performance.now();
    const outcome = await this.#send(row);
    const durationMs = Math.round(performance.now() - started);
    const record = this.#recordOf(row, outcome, startedAt, durationMs);

    try {
      await this.#records.submit(record);
    } catch (err) {
      this.#logger.error({ err, deliveryId: row.id }, 'webhook attempt could not be recorded');
      return false;
    }
    this.#log(row, outcome, record, startedAt + durationMs);
    return true;
  }

  async #send(row: DueRow): Promise<Outcome> {
    const signature = createHmac('sha256', row.webhook_secret).update(row.body, 'utf8');
    const headers = { 'BTCPay-Sig': `sha256=${signature.digest('hex')}` };
    try {
      const { status } = await postJson(row.webhook_url, row.body, headers, {
        proxy: this.#proxy,
        torOnly: this.#torOnly,
        timeoutMs: this.#timeoutMs,
        signal: this.#abort.signal,
      });
      return { status, error: null };
    } catch (err) {
      if (err instanceof OutboundHttpError) return { status: null, error: err.code };
      this.#logger.error({ err, deliveryId: row.id }, 'webhook attempt failed unexpectedly');
      return { status: null, error: 'internal' };
    }
  }

  #recordOf(row: DueRow, outcome: Outcome, startedAt: number, durationMs: number): AttemptRecord {
    const finishedAt = startedAt + durationMs;
    const seconds = Math.floor(finishedAt / 1000);
    const base = {
      id: row.id,
      merchantId: row.merchant_id,
      invoiceId: row.invoice_id,
      at: Math.floor(startedAt / 1000),
      status: outcome.status,
      error: outcome.error,
      durationMs,
      deliveredAt: null,
      failedAt: null,
      nextAttemptAtMs: finishedAt,
    };
    const verdict = verdictOf(outcome);
    if (verdict === 'delivered') return { ...base, deliveredAt: seconds };
    if (verdict === 'refused') return { ...base, failedAt: seconds };
    // Shutting down is not the merchant's fault: the next run tries at once.
    if (outcome.error === 'aborted') return base;

    const ageMs = finishedAt - row.created_at * 1000;
    if (ageMs >= this.#retry.giveUpAfterMs) return { ...base, failedAt: seconds };
    return { ...base, nextAttemptAtMs: finishedAt + backoffMs(row.attempts + 1, this.#retry) };
  }

  /** What was sent, never to whom: the URL, body and secret stay out of the log. */
  #log(row: DueRow, outcome: Outcome, record: AttemptRecord, finishedAt: number): void {
    const fields = {
      deliveryId: row.id,
      merchantId: row.merchant_id,
      type: row.type,
      attempt: row.attempts + 1,
      durationMs: record.durationMs,
    };
    if (record.deliveredAt !== null) {
      this.#logger.info({ ...fields, status: outcome.status }, 'webhook delivered');
    } else if (record.failedAt !== null) {
      this.#logger.warn(
        { ...fields, status: outcome.status, code: outcome.error ?? 'http_status' },
        'webhook delivery failed; no more attempts',
      );
    } else {
      this.#logger.warn(
        {
          ...fields,
          status: outcome.status,
          code: outcome.error ?? 'http_status',
          retryInMs: record.nextAttemptAtMs - finishedAt,
        },
        'webhook attempt failed; will retry',
      );
    }
  }
}

type AttemptRecord = {
  id: string;
  merchantId: string;
  invoiceId: string;
  at: number;
  status: number | null;
  error: string | null;
  durationMs: number;
  deliveredAt: number | null;
  failedAt: number | null;
  nextAttemptAtMs: number;
};

/**
 * 2xx is delivered. No answer, 408, 429 and 5xx are worth trying again.
 * Any other status, 3xx included since redirects are never followed, is
 * the merchant refusing the delivery, and trying again would not change it.
 */
export function verdictOf(outcome: Outcome): Verdict {
  const { status } = outcome;
  if (status === null) return 'retry';
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'refused';
}

/** The delay before attempt `failures + 1`, with jitter over the upper half of the step. */
export function backoffMs(failures: number, schedule: RetrySchedule): number {
  const step = Math.min(
    schedule.maxDelayMs,
    schedule.firstDelayMs * 2 ** Math.min(failures - 1, 40),
  );
  return Math.ceil(step / 2 + Math.random() * (step / 2));
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  }
}
