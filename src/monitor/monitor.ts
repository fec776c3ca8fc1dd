import type { Logger } from 'pino';

import type { PaymentEvent, PaymentStore, Scan, Transfer } from '../storage/payment-store.js';
import type { WalletRpcClient } from './wallet-rpc-client.js';

/** Above any real chain; get_transfers needs some max_height with filter_by_height. */
const UNBOUNDED_HEIGHT = 2 ** 31 - 1;
/**
 * Transfers a backlog range should hold, and the most one transaction
 * stores: up to about a tenth of a second of the event loop. Larger
 * transactions cost less in all (random-key indexes make every commit
 * write again pages the one before wrote) but hold the loop for longer.
 */
const RANGE_TRANSFERS = 8_000;
/** How far one range's size may move from the previous one's. */
const RANGE_GROWTH = 8;

export type MonitorCounters = {
  scanned(height: number, walletHeight: number): void;
  ingested(result: string, count: number): void;
  rpcError(code: string): void;
};

/**
 * Reads a get_transfers answer into checked transfers, with none above
 * `maxHeight` (parseTransfersAnswer, here or on a worker thread); rejects
 * with a WalletRpcError when the answer is malformed.
 */
export type TransfersParser = (answer: Buffer, maxHeight: number) => Promise<Transfer[]>;

export type MonitorOptions = {
  rpc: WalletRpcClient;
  payments: PaymentStore;
  parse: TransfersParser;
  logger: Logger;
  startHeight: number;
  /** Blocks below the cursor scanned again to see transfers a reorg brought in. */
  reorgWindow: number;
  /**
   * Blocks a scan reads in one transaction when more lie between its start
   * and the wallet height (default 100); adapted from range to range so
   * that each holds about RANGE_TRANSFERS transfers.
   */
  rangeBlocks?: number;
  pollIntervalMs: number;
  maxBackoffMs: number;
  onEvents(events: PaymentEvent[]): void;
  counters?: MonitorCounters;
  now?: () => number;
};

/**
 * Polls the wallet RPC and records incoming transfers. Each poll reads the
 * wallet height, then every transfer above the scan start, and applies the
 * result with the cursor that says how far it got; on failure it backs off
 * exponentially and starts again from the stored cursor, so an outage or
 * restart misses nothing. A backlog (a first start, an outage) is read in
 * height ranges, each applied in its own transaction with the cursor at
 * its top, so that no single transaction holds the event loop for long.
 */
export class Monitor {
  readonly #options: MonitorOptions;
  readonly #now: () => number;
  #walletHeight = 0;
  #lastSuccessAt = 0;
  #reachable: boolean | undefined;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #closed = false;
  readonly #rangeBlocks: number;

  constructor(options: MonitorOptions) {
    const rangeBlocks = options.rangeBlocks ?? 100;
    if (!Number.isSafeInteger(rangeBlocks) || rangeBlocks < 1) {
      throw new RangeError('rangeBlocks must be a whole number of blocks, at least 1');
    }
    this.#options = options;
    this.#rangeBlocks = rangeBlocks;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  get walletHeight(): number {
    return this.#walletHeight;
  }

  /** Milliseconds since the last successful poll; Infinity before the first. */
  lagMs(): number {
    return this.#lastSuccessAt === 0 ? Infinity : Date.now() - this.#lastSuccessAt;
  }

  get reachable(): boolean {
    return this.#reachable === true;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /**
   * Stops between polls, or between the ranges of a backlog: what a poll in
   * progress is storing commits first.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
  }

  /**
   * One scan. Throws when the wallet fails; what was applied before stays.
   *
   * A backlog is read in ranges without the pool, each applied in its own
   * transactions while the next range is fetched and parsed, and the rest
   * of the chain and the pool last, as every poll reads them.
   *
   * The wallet refreshes on its own, so the calls of one scan may see two
   * chains. The height is read before and after the transfers, and
   * confirmations are counted against the lower of the two: counted
   * against a height the transfers were not read at, a transfer would
   * gain confirmations it does not have. Transfers are read with no upper
   * height bound, so one that left the pool for a new block between the
   * calls is not taken for vanished; it waits, unconfirmed, for the next
   * scan. A wallet that is catching up therefore still makes progress.
   */
  async pollOnce(): Promise<PaymentEvent[]> {
    const { rpc, payments, startHeight, reorgWindow } = this.#options;
    let from = payments.scanFrom(startHeight, reorgWindow);
    let before = await rpc.getHeight();
    let blocks = this.#rangeBlocks;
    const events: PaymentEvent[] = [];

    // A backlog: bounded ranges without the pool while more than one range
    // is left, three at a time: one stored here, the one after it parsed
    // on a worker, and the next fetched.
    let parsed: FetchedRange | undefined;
    let fetching = before - from > blocks ? this.#fetch(from, from + blocks) : undefined;
    while (fetching) {
      if (this.#closed) return events;
      const { answer, after, to } = await fetching;
      // A wallet that fell below the range (a reset, a rescan) is read whole below.
      if (after < to) break;
      const next = this.#parse(answer, to, { walletHeight: Math.min(before, after), from, to });
      from = to;
      before = after;
      fetching = before - from > blocks ? this.#fetch(from, from + blocks) : undefined;
      if (parsed) blocks = nextRange(blocks, await this.#apply(parsed, events));
      parsed = next;
    }
    if (parsed) await this.#apply(parsed, events);

    const answer = await rpc.transfersAnswer(from, UNBOUNDED_HEIGHT);
    const after = await rpc.getHeight();
    const last = { walletHeight: Math.min(before, after), from };
    await this.#apply(this.#parse(answer, Math.max(before, after), last), events);
    this.#lastSuccessAt = Date.now();
    return events;
  }

  /** Fetches a range and the height after it; a fetch left behind by a failure rejects unheard. */
  #fetch(from: number, to: number): Promise<{ answer: Buffer; after: number; to: number }> {
    const { rpc } = this.#options;
    const fetched = (async () => {
      const answer = await rpc.transfersAnswer(from, to, false);
      return { answer, after: await rpc.getHeight(), to };
    })();
    fetched.catch(() => undefined);
    return fetched;
  }

  /** Starts parsing an answer; a range left unapplied by a failure rejects unheard. */
  #parse(answer: Buffer, maxHeight: number, scan: Omit<RangeScan, 'transfers'>): FetchedRange {
    const transfers = Promise.resolve().then(() => this.#options.parse(answer, maxHeight));
    transfers.catch(() => undefined);
    return { scan, transfers };
  }

  /**
   * Applies one scan or range and tells the caches, a transaction per
   * chunk of heights: a range can hold far more transfers than its size
   * foretold (the first blocks with payments after a long empty stretch).
   * The events are added to `events` one by one: spread into push(), a
   * backlog's hundred thousand would overflow the stack. Resolves to the
   * number of transfers read.
   */
  async #apply(fetched: FetchedRange, events: PaymentEvent[]): Promise<number> {
    const scan = { ...fetched.scan, transfers: await fetched.transfers };
    for (const chunk of heightChunks(scan, RANGE_TRANSFERS)) {
      const applied = this.#options.payments.apply({ ...chunk, now: this.#now() });
      this.#walletHeight = chunk.walletHeight;
      this.#count(applied, chunk.walletHeight);
      this.#options.onEvents(applied);
      for (const event of applied) events.push(event);
    }
    return scan.transfers.length;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        const events = await this.pollOnce();
        this.#setReachable(true);
        failures = 0;
        if (events.length > 0) {
          this.#options.logger.info({ changes: events.length, height: this.#walletHeight }, 'payments updated');
        }
      } catch (err) {
        failures++;
        this.#onFailure(err);
      }
      await this.#sleep(this.#delay(failures));
    }
  }

  #delay(failures: number): number {
    const { pollIntervalMs, maxBackoffMs } = this.#options;
    if (failures === 0) return pollIntervalMs;
    const backoff = Math.min(maxBackoffMs, pollIntervalMs * 2 ** Math.min(failures, 20));
    return backoff / 2 + Math.random() * (backoff / 2);
  }

  #onFailure(err: unknown): void {
    const code = (err as { code?: string }).code ?? 'internal';
    this.#options.counters?.rpcError(code);
    if (!code.startsWith('rpc_')) this.#options.logger.error({ err }, 'monitor poll failed');
    this.#setReachable(false, err);
  }

  #setReachable(reachable: boolean, err?: unknown): void {
    if (this.#reachable === reachable) return;
    this.#reachable = reachable;
    const { logger } = this.#options;
    if (reachable) logger.info({ height: this.#walletHeight }, 'wallet RPC reachable; monitor synced');
    else logger.warn({ err }, 'wallet RPC unavailable; retrying with backoff');
  }

  #count(events: PaymentEvent[], walletHeight: number): void {
    const counters = this.#options.counters;
    if (!counters) return;
    counters.scanned(this.#options.payments.cursor() ?? 0, walletHeight);
    const byKind = new Map<string, number>();
    for (const event of events) {
      const result = event.kind === 'ignored' ? event.payment.state : event.kind;
      byKind.set(result, (byKind.get(result) ?? 0) + 1);
    }
    for (const [result, count] of byKind) counters.ingested(result, count);
  }

  #sleep(ms: number): Promise<void> {
    // close() during a poll has already woken the previous sleep.
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }
}

type RangeScan = Omit<Scan, 'now'>;
type FetchedRange = { scan: Omit<RangeScan, 'transfers'>; transfers: Promise<Transfer[]> };

/**
 * Splits a scan of many transfers into consecutive ranges of whole heights
 * holding at least `size` transfers each; the last keeps the scan's own top
 * and the pool. A scan of up to twice `size` stays whole.
 */
export function heightChunks(scan: RangeScan, size: number): RangeScan[] {
  if (scan.transfers.length <= 2 * size) return [scan];
  const mined = scan.transfers.filter((t) => t.height > 0);
  const pool = scan.transfers.filter((t) => t.height === 0);
  if (!isByHeight(mined)) mined.sort((a, b) => a.height - b.height);

  const chunks: RangeScan[] = [];
  let start = 0;
  let from = scan.from;
  for (let end = size; end < mined.length - size; end++) {
    if (mined[end]!.height === mined[end - 1]!.height) continue;
    const to = mined[end - 1]!.height;
    chunks.push({ transfers: mined.slice(start, end), walletHeight: scan.walletHeight, from, to });
    start = end;
    from = to;
    end += size - 1;
  }
  const rest = mined.slice(start).concat(pool);
  chunks.push({ ...scan, transfers: rest, from });
  return chunks;
}

function isByHeight(transfers: Transfer[]): boolean {
  for (let i = 1; i < transfers.length; i++) {
    if (transfers[i]!.height < transfers[i - 1]!.height) return false;
  }
  return true;
}

/** The next range's size in blocks, from how many transfers the last one's held. */
export function nextRange(blocks: number, transfers: number): number {
  const wanted = transfers === 0 ? blocks * RANGE_GROWTH : (blocks * RANGE_TRANSFERS) / transfers;
  const bounded = Math.min(blocks * RANGE_GROWTH, Math.max(blocks / RANGE_GROWTH, wanted));
  return Math.max(1, Math.round(bounded));
}
