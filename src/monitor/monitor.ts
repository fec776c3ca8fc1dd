import type { Logger } from 'pino';

import type { PaymentEvent, PaymentStore, Transfer } from '../storage/payment-store.js';
import { parseTransfer } from './transfer-parser.js';
import type { WalletRpcClient } from './wallet-rpc-client.js';

/** Above any real chain; get_transfers needs some max_height with filter_by_height. */
const UNBOUNDED_HEIGHT = 2 ** 31 - 1;

export type MonitorCounters = {
  scanned(height: number, walletHeight: number): void;
  ingested(result: string, count: number): void;
  rpcError(code: string): void;
};

export type MonitorOptions = {
  rpc: WalletRpcClient;
  payments: PaymentStore;
  pidTag(pid: Buffer): Buffer;
  logger: Logger;
  startHeight: number;
  /** Blocks below the cursor scanned again to see transfers a reorg brought in. */
  reorgWindow: number;
  pollIntervalMs: number;
  maxBackoffMs: number;
  onEvents(events: PaymentEvent[]): void;
  counters?: MonitorCounters;
  now?: () => number;
};

/**
 * Polls the wallet RPC and records incoming transfers. Each poll reads the
 * wallet height, then every transfer above the scan start, and applies the
 * result in one transaction; on failure it backs off exponentially and
 * starts again from the stored cursor, so an outage or restart misses
 * nothing.
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

  constructor(options: MonitorOptions) {
    this.#options = options;
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

  /** Stops between polls: a poll in progress finishes its transaction first. */
  async close(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
  }

  /**
   * One scan, applied in one transaction. Throws when the wallet fails.
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
    const from = payments.scanFrom(startHeight, reorgWindow);
    const before = await rpc.getHeight();
    const raw = await rpc.incomingTransfers(from, UNBOUNDED_HEIGHT);
    const after = await rpc.getHeight();
    const walletHeight = Math.min(before, after);
    const transfers = this.#parse(raw, Math.max(before, after));

    const events = payments.apply({ transfers, walletHeight, from, now: this.#now() });
    this.#walletHeight = walletHeight;
    this.#lastSuccessAt = Date.now();
    this.#count(events, walletHeight);
    this.#options.onEvents(events);
    return events;
  }

  #parse(raw: Record<string, unknown>[], walletHeight: number): Transfer[] {
    const transfers: Transfer[] = [];
    for (const entry of raw) {
      const transfer = parseTransfer(entry, walletHeight, this.#options.pidTag);
      if (transfer) transfers.push(transfer);
    }
    return transfers;
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
