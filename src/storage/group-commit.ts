/** What a batch answers for one item whose own part of the batch failed. */
export class ItemFailure {
  constructor(readonly error: unknown) {}
}

/**
 * Writes one batch in one transaction and answers per item, in order: a
 * value, or an ItemFailure for an item whose part was rolled back alone
 * (a savepoint). Throwing fails the whole batch.
 */
export type BatchWriter<I, O> = (items: readonly I[]) => (O | ItemFailure)[];

/** Most items one transaction commits. */
const DEFAULT_MAX_BATCH = 256;

/** Flushes waiting for a turn of the event loop, across every GroupCommit. */
const turns: (() => void)[] = [];

/**
 * Runs `flush` in a later turn of the event loop, one flush per turn
 * across all group commits (claims, invoices, webhook attempts), so that
 * the sockets are read between any two commits.
 */
function takeTurn(flush: () => void): void {
  turns.push(flush);
  if (turns.length === 1) setImmediate(nextTurn);
}

function nextTurn(): void {
  const flush = turns.shift()!;
  if (turns.length > 0) setImmediate(nextTurn);
  flush();
}

type Pending<I, O> = { item: I; resolve(value: O): void; reject(err: unknown): void };

/**
 * Group commit. The cost of a small write transaction is mostly its
 * commit: random keys (payment id tags, invoice ids) dirty a
 * page of each unique index, and the commit writes every dirty page to the
 * WAL. Writes asked for in one turn of the event loop wait for the turn's
 * end (setImmediate, after the sockets read in that turn) and commit
 * together, so a page shared by the batch is written once and the commit's
 * fixed cost is paid once. Nobody is answered before the commit that holds
 * their write, so a crash loses nothing that was acknowledged; the writes
 * run in submission order, so unique keys decide between competing writes
 * exactly as they would one by one.
 */
export class GroupCommit<I, O> {
  readonly #write: BatchWriter<I, O>;
  readonly #maxBatch: number;
  #pending: Pending<I, O>[] = [];
  #scheduled = false;

  constructor(write: BatchWriter<I, O>, maxBatch = DEFAULT_MAX_BATCH) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    }
    this.#write = write;
    this.#maxBatch = maxBatch;
  }

  /** Resolves with the item's answer once the transaction holding it has committed. */
  submit(item: I): Promise<O> {
    const answer = new Promise<O>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      takeTurn(() => this.#flush());
    }
    return answer;
  }

  /**
   * Commits one batch per turn: when more are waiting, the next batch goes
   * after the sockets have been read again, so a long queue of writes does
   * not hold the event loop in one piece.
   */
  #flush(): void {
    const batch = this.#pending.splice(0, this.#maxBatch);
    if (this.#pending.length > 0) takeTurn(() => this.#flush());
    else this.#scheduled = false;
    this.#commit(batch);
  }

  #commit(batch: Pending<I, O>[]): void {
    let answers: (O | ItemFailure)[];
    try {
      answers = this.#write(batch.map((p) => p.item));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const answer = answers[i];
      if (answer instanceof ItemFailure) p.reject(answer.error);
      else if (i >= answers.length) p.reject(new Error('the batch writer answered too few items'));
      else p.resolve(answer as O);
    });
  }
}
