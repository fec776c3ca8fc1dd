import type { ClaimRequest } from '../storage/ticket-store.js';

/** What the queue needs of the ticket store. */
export type ClaimWriter = { claimAll(requests: readonly ClaimRequest[]): boolean[] };

/** Most claims one transaction commits. */
const DEFAULT_MAX_BATCH = 256;

type Pending = ClaimRequest & { resolve(claimed: boolean): void; reject(err: unknown): void };

/**
 * Group commit for claims. A claim is a write transaction of its own, and
 * its cost is mostly the commit: the random keys of the tickets' unique
 * indexes dirty a page each. Claims asked for in one turn of the event loop
 * wait for the turn's end (setImmediate, after the sockets read in that
 * turn) and commit together, so a page shared by a batch is written once.
 * Nobody is answered before the commit that holds their claim, so a crash
 * loses no claim that was acknowledged, and SQLite's unique key still
 * decides which of two claims of one id wins, within a batch or across.
 */
export class ClaimQueue {
  readonly #writer: ClaimWriter;
  readonly #maxBatch: number;
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(writer: ClaimWriter, maxBatch = DEFAULT_MAX_BATCH) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    }
    this.#writer = writer;
    this.#maxBatch = maxBatch;
  }

  /** Resolves true for the one claim of a tag that is ever made, false for any other. */
  claim(request: ClaimRequest): Promise<boolean> {
    const answer = new Promise<boolean>((resolve, reject) => {
      this.#pending.push({ ...request, resolve, reject });
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    return answer;
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    for (let start = 0; start < pending.length; start += this.#maxBatch) {
      this.#commit(pending.slice(start, start + this.#maxBatch));
    }
  }

  #commit(batch: Pending[]): void {
    let claimed: boolean[];
    try {
      claimed = this.#writer.claimAll(batch);
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    batch.forEach((item, i) => item.resolve(claimed[i] === true));
  }
}
