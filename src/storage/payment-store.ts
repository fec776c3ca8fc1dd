import type { Db } from './database.js';

/** An incoming transfer as the monitor validated it. Height 0 means the pool. */
export type Transfer = {
  txid: string;
  major: number;
  minor: number;
  pidTag: Buffer;
  amount: bigint;
  height: number;
  unlockTime: bigint;
  doubleSpendSeen: boolean;
};

export type PaymentState = 'pending' | 'confirmed' | 'dust' | 'locked' | 'orphaned';

export type PaymentRow = {
  id: number;
  txid: string;
  subaddr_major: number;
  subaddr_minor: number;
  pid_tag: Buffer;
  amount: bigint;
  height: number;
  state: PaymentState;
  required_confirmations: number;
  first_seen_at: number;
  confirmed_at: number | null;
  orphaned_at: number | null;
  invoice_seq: number | null;
};

/** What a scan changed, so caches and filters can follow. */
export type PaymentEvent = {
  kind: 'seen' | 'confirmed' | 'orphaned' | 'reappeared' | 'ignored';
  payment: PaymentRow;
};

export type Scan = {
  transfers: Transfer[];
  walletHeight: number;
  /** Heights above this were scanned in full, up to `to`. */
  from: number;
  /**
   * The top of a range that a backlog scan reads in a transaction of its
   * own, without the pool. Absent: every height above `from` and the pool
   * were read, and the cursor moves to the wallet height.
   */
  to?: number;
  now: number;
};

/** What a payment id's payments are held to. */
export type PaymentTerms = {
  requiredConfirmations: number;
  /** The invoice the payment id belongs to; null for a ticket. */
  invoiceSeq: number | null;
};

export type PaymentPolicy = {
  dustFloor: bigint;
  /**
   * Looked up once for each transfer not stored yet: in a backlog of
   * 100,000 new transfers, two lookups each (confirmations, then the
   * invoice) were 0.05 s of the main thread.
   */
  termsOf(pidTag: Buffer): PaymentTerms;
  /** Runs inside the scan's transaction, so what it writes commits with the scan. */
  onApplied?(events: PaymentEvent[], scan: Scan): void;
};

const CURSOR_KEY = 'scan_height';

/**
 * Payments and the scan cursor. A scan is applied in one transaction: the
 * transfers it saw, the payments it orphaned or confirmed, and the cursor
 * that says how far it got, so a crash leaves either all of it or none.
 */
export class PaymentStore {
  readonly #db: Db;
  readonly #policy: PaymentPolicy;
  readonly #byKey;
  readonly #insert;
  readonly #setHeight;
  readonly #setState;
  readonly #pending;
  readonly #pendingIn;
  readonly #byTag;
  readonly #getMeta;
  readonly #setMeta;
  readonly #lowestPending;
  readonly #applyScan;

  constructor(db: Db, policy: PaymentPolicy) {
    this.#db = db;
    this.#policy = policy;
    this.#byKey = db
      .prepare('SELECT * FROM payments WHERE txid = ? AND subaddr_major = ? AND subaddr_minor = ?')
      .safeIntegers(true);
    // No RETURNING: the stored row is known from what was bound and the new
    // rowid, and reading it back cost a fifth of a backlog scan. The upsert
    // clause makes the unique key the dedupe check, so a key already stored
    // inserts nothing and only then is its row read.
    this.#insert = db.prepare(
      `INSERT INTO payments (txid, subaddr_major, subaddr_minor, pid_tag, amount, height, state,
         required_confirmations, first_seen_at, confirmed_at, invoice_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (txid, subaddr_major, subaddr_minor) DO NOTHING`,
    );
    this.#setHeight = db.prepare('UPDATE payments SET height = ? WHERE id = ?');
    this.#setState = db
      .prepare(
        `UPDATE payments SET state = @state, confirmed_at = @confirmedAt, orphaned_at = @orphanedAt
         WHERE id = @id RETURNING *`,
      )
      .safeIntegers(true);
    this.#pending = db.prepare("SELECT * FROM payments WHERE state = 'pending'").safeIntegers(true);
    // A range scan has not read the pool nor the heights above its range,
    // so it cannot tell whether those payments are still there or
    // contested: the range that reads them decides. Those below it were
    // decided by the ranges before it, and the poll's last read looks at
    // every pending payment again (payments_pending).
    this.#pendingIn = db
      .prepare("SELECT * FROM payments WHERE state = 'pending' AND height > ? AND height <= ?")
      .safeIntegers(true);
    this.#byTag = db
      .prepare(
        `SELECT state, amount, height, required_confirmations FROM payments
         WHERE pid_tag = ? AND invoice_seq IS NULL`,
      )
      .safeIntegers(true);
    this.#getMeta = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    this.#setMeta = db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.#lowestPending = db
      .prepare("SELECT min(height) FROM payments WHERE state = 'pending' AND height > 0")
      .pluck();
    this.#applyScan = db.transaction((scan: Scan) => this.#apply(scan));
  }

  /** Heights below the cursor have been scanned; undefined before the first scan. */
  cursor(): number | undefined {
    const value = this.#getMeta.get(CURSOR_KEY) as string | undefined;
    return value === undefined ? undefined : Number(value);
  }

  /**
   * Where the next scan must start: low enough to see again every payment
   * that is not final yet, and the last `reorgWindow` blocks, where a reorg
   * can bring in transfers that the previous scan could not see.
   */
  scanFrom(startHeight: number, reorgWindow: number): number {
    const cursor = this.cursor() ?? startHeight;
    const lowest = this.#lowestPending.get() as number | null;
    let from = cursor - reorgWindow;
    if (lowest !== null && lowest - 1 < from) from = lowest - 1;
    return Math.max(from, startHeight > 0 ? startHeight - 1 : 0);
  }

  apply(scan: Scan): PaymentEvent[] {
    return this.#applyScan.immediate(scan) as PaymentEvent[];
  }

  /** Every ticket payment (not an invoice's) to one payment id, as stored. */
  paymentsFor(pidTag: Buffer): Pick<PaymentRow, 'state' | 'amount' | 'height' | 'required_confirmations'>[] {
    return (this.#byTag.all(pidTag) as Record<string, unknown>[]).map((row) => ({
      state: row.state as PaymentState,
      amount: row.amount as bigint,
      height: Number(row.height),
      required_confirmations: Number(row.required_confirmations),
    }));
  }

  /** Every ticket payment id with a recorded payment, for filling the Bloom filter. */
  *allTags(): IterableIterator<Buffer> {
    const rows = this.#db
      .prepare('SELECT DISTINCT pid_tag FROM payments WHERE invoice_seq IS NULL')
      .pluck()
      .iterate();
    for (const tag of rows) yield tag as Buffer;
  }

  #apply(scan: Scan): PaymentEvent[] {
    const events: PaymentEvent[] = [];
    const confirmedOnArrival: PaymentEvent[] = [];
    const seen = new Set<string>();
    const contested = new Set<string>();

    for (const transfer of scan.transfers) {
      if (transfer.doubleSpendSeen && transfer.height === 0) contested.add(keyOfTransfer(transfer));
      const isContested = contested.size > 0 && contested.has(keyOfTransfer(transfer));
      const event = this.#record(transfer, scan, isContested, seen, confirmedOnArrival);
      if (event) events.push(event);
    }
    const pending = scan.to === undefined ? this.#pending.all() : this.#pendingIn.all(scan.from, scan.to);
    for (const row of pending as Record<string, unknown>[]) {
      const payment = toRow(row);
      const key = keyOf(payment.txid, payment.subaddr_major, payment.subaddr_minor);
      const inWindow = payment.height === 0 || payment.height > scan.from;
      if (inWindow && !seen.has(key)) {
        events.push({ kind: 'orphaned', payment: this.#changeState(payment, 'orphaned', scan.now) });
      } else if (!contested.has(key) && isFinal(payment, scan.walletHeight)) {
        events.push({ kind: 'confirmed', payment: this.#changeState(payment, 'confirmed', scan.now) });
      }
    }
    // One by one: spread into push(), a large backlog would overflow the stack.
    for (const event of confirmedOnArrival) events.push(event);

    this.#setMeta.run(CURSOR_KEY, String(scan.to ?? scan.walletHeight));
    this.#policy.onApplied?.(events, scan);
    return events;
  }

  /**
   * Stores a transfer not seen before, or follows one already stored, and
   * notes in `seen` each key the sweep must not orphan. A new
   * transfer that is already deep enough (a monitor catching up on a
   * backlog) is stored as confirmed at once, and its `confirmed` event goes
   * to `confirmedOnArrival`, after the scan's other confirmations: storing
   * it pending and confirming it in the same scan wrote every row twice,
   * which was a third of the time a 100,000-transfer scan took.
   */
  #record(
    transfer: Transfer,
    scan: Scan,
    contested: boolean,
    seen: Set<string>,
    confirmedOnArrival: PaymentEvent[],
  ): PaymentEvent | undefined {
    const payment = this.#insertNew(transfer, scan, contested);
    // Only pending payments are swept, so only they need their key in
    // `seen`; skipping the rest keeps 100,000 strings out of a backlog scan.
    if (payment === undefined || payment.state === 'pending') seen.add(keyOfTransfer(transfer));
    if (payment === undefined) return this.#follow(transfer, scan);

    if (payment.state !== 'confirmed') {
      return { kind: payment.state === 'pending' ? 'seen' : 'ignored', payment };
    }
    confirmedOnArrival.push({ kind: 'confirmed', payment });
    return { kind: 'seen', payment: { ...payment, state: 'pending', confirmed_at: null } };
  }

  /** Inserts a transfer whose key is not stored yet; undefined when it is. */
  #insertNew(transfer: Transfer, scan: Scan, contested: boolean): PaymentRow | undefined {
    const { txid, major, minor, pidTag, amount, height } = transfer;
    const initial = this.#initialState(transfer);
    const { requiredConfirmations: required, invoiceSeq } = this.#policy.termsOf(pidTag);
    const final =
      initial === 'pending' &&
      !contested &&
      isFinal({ height, required_confirmations: required }, scan.walletHeight);
    const state = final ? 'confirmed' : initial;
    const confirmedAt = final ? scan.now : null;

    const { changes, lastInsertRowid } = this.#insert.run(
      txid,
      major,
      minor,
      pidTag,
      amount,
      height,
      state,
      required,
      scan.now,
      confirmedAt,
      invoiceSeq,
    );
    if (changes === 0) return undefined;
    return {
      id: Number(lastInsertRowid),
      txid,
      subaddr_major: major,
      subaddr_minor: minor,
      pid_tag: pidTag,
      amount,
      height,
      state,
      required_confirmations: required,
      first_seen_at: scan.now,
      confirmed_at: confirmedAt,
      orphaned_at: null,
      invoice_seq: invoiceSeq,
    };
  }

  /** Follows a stored transfer: a new height, or an orphan that came back. */
  #follow(transfer: Transfer, scan: Scan): PaymentEvent | undefined {
    const existing = this.#byKey.get(transfer.txid, transfer.major, transfer.minor);
    const payment = toRow(existing as Record<string, unknown>);
    if (payment.state !== 'pending' && payment.state !== 'orphaned') return undefined;
    if (payment.height !== transfer.height) {
      this.#setHeight.run(transfer.height, payment.id);
      payment.height = transfer.height;
    }
    if (payment.state === 'orphaned') {
      return { kind: 'reappeared', payment: this.#changeState(payment, 'pending', scan.now) };
    }
    return undefined;
  }

  #initialState(transfer: Transfer): PaymentState {
    if (transfer.amount < this.#policy.dustFloor) return 'dust';
    if (transfer.unlockTime !== 0n) return 'locked';
    return 'pending';
  }

  #changeState(payment: PaymentRow, state: PaymentState, now: number): PaymentRow {
    const row = this.#setState.get({
      id: payment.id,
      state,
      confirmedAt: state === 'confirmed' ? now : null,
      orphanedAt: state === 'orphaned' ? now : null,
    }) as Record<string, unknown>;
    return toRow(row);
  }
}

/** Whether a pending payment has the confirmations its policy demands. */
export function isFinal(
  payment: Pick<PaymentRow, 'height' | 'required_confirmations'>,
  walletHeight: number,
): boolean {
  if (payment.required_confirmations === 0) return true;
  return payment.height > 0 && walletHeight - payment.height >= payment.required_confirmations;
}

export function confirmationsOf(height: number, walletHeight: number): number {
  return height > 0 ? Math.max(0, walletHeight - height) : 0;
}

function keyOf(txid: string, major: number, minor: number): string {
  return `${txid}:${major}:${minor}`;
}

function keyOfTransfer(transfer: Transfer): string {
  return keyOf(transfer.txid, transfer.major, transfer.minor);
}

function toRow(row: Record<string, unknown>): PaymentRow {
  return {
    id: Number(row.id),
    txid: row.txid as string,
    subaddr_major: Number(row.subaddr_major),
    subaddr_minor: Number(row.subaddr_minor),
    pid_tag: row.pid_tag as Buffer,
    amount: row.amount as bigint,
    height: Number(row.height),
    state: row.state as PaymentState,
    required_confirmations: Number(row.required_confirmations),
    first_seen_at: Number(row.first_seen_at),
    confirmed_at: row.confirmed_at === null ? null : Number(row.confirmed_at),
    orphaned_at: row.orphaned_at === null ? null : Number(row.orphaned_at),
    invoice_seq: row.invoice_seq === null ? null : Number(row.invoice_seq),
  };
}
