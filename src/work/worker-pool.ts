import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Piscina } from 'piscina';

import { UnavailableError } from '../errors.js';
import type { DigestItem } from '../../workers/digest-text.js';
import type { CheckpointItem, CheckpointOutcome } from '../../workers/checkpoint-wal.js';
import type { ParseTransfersItem, ParseTransfersOutcome } from '../../workers/parse-transfers.js';
import type { VerifyItem, VerifyOutcome } from '../../workers/verify-signatures.js';

/**
 * Most items one piscina task carries. Measured in CPU time on two cores: a
 * round trip to a worker costs about two thirds of an ed25519 verify, so one
 * item per task spends some 60% on top of each verify, and 64 per task about
 * 15% (structured cloning of the items stays).
 */
const BATCH_SIZE = 64;

/**
 * Scheduling priority the worker threads give up (Linux nice, per thread).
 * The main thread owns the listeners and spends about a third of a verify
 * on each request; at equal priority, busy workers on a crowded two-core
 * machine starved it, and timers ran up to about 150 ms late in a flood of
 * 2,000 verifies, against under 100 ms at nice 10 for the same total time.
 * Idle CPU still goes to the workers: nice only decides who waits when both
 * want a core.
 */
const WORKER_NICE = 10;

/** Default bound on items waiting on the main thread, per worker thread. */
const QUEUE_ITEMS_PER_THREAD = 1_024;

export type WorkerPoolOptions = {
  /** Worker threads, fixed for the life of the pool (config `workers`). */
  threads: number;
  /** Most items waiting for a worker before new work is refused. */
  maxQueue?: number;
};

type Job<I, O> = { item: I; resolve(value: O): void; reject(err: unknown): void };

/** Waiting items of one kind, all handled by one worker file. */
class Lane<I, O> {
  readonly #filename: string;
  readonly #jobs: Job<I, O>[] = [];

  constructor(filename: string) {
    this.#filename = filename;
  }

  get size(): number {
    return this.#jobs.length;
  }

  enqueue(items: readonly I[]): Promise<O[]> {
    const answers = items.map(
      (item) => new Promise<O>((resolve, reject) => this.#jobs.push({ item, resolve, reject })),
    );
    return Promise.all(answers);
  }

  /** Sends up to one batch to a worker and settles each of its items. */
  async dispatch(piscina: Piscina): Promise<void> {
    const batch = this.#jobs.splice(0, BATCH_SIZE);
    try {
      const items = batch.map((job) => job.item);
      const answers = (await piscina.run(items, { filename: this.#filename })) as O[];
      batch.forEach((job, i) => job.resolve(answers[i] as O));
    } catch (err) {
      for (const job of batch) job.reject(err);
    }
  }

  rejectAll(err: unknown): void {
    for (const job of this.#jobs.splice(0)) job.reject(err);
  }
}

/**
 * The piscina pool that takes CPU-bound work off the main thread, with a
 * batching queue in front of it. Items wait on the main thread and go out up
 * to BATCH_SIZE per task: at once while a worker is free, otherwise as soon
 * as one frees. At most one task per thread is in flight, so under load the
 * queue fills and batches grow, and when idle an item goes out alone.
 */
export class WorkerPool {
  readonly #piscina: Piscina;
  readonly #threads: number;
  readonly #maxQueue: number;
  readonly #verify: Lane<VerifyItem, VerifyOutcome>;
  readonly #digest: Lane<DigestItem, string>;
  readonly #lanes: readonly (Lane<VerifyItem, VerifyOutcome> | Lane<DigestItem, string>)[];
  readonly #parseFile: string;
  readonly #checkpointFile: string;
  #running = 0;
  #turn = 0;
  #drainScheduled = false;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    const { threads, maxQueue = threads * QUEUE_ITEMS_PER_THREAD } = options;
    checkInteger('threads', threads, 1, 1_024);
    checkInteger('maxQueue', maxQueue, 1, 16_777_216);

    this.#threads = threads;
    this.#maxQueue = maxQueue;
    this.#verify = new Lane(workerFile('verify-signatures'));
    this.#digest = new Lane(workerFile('digest-text'));
    this.#lanes = [this.#verify, this.#digest];
    this.#parseFile = workerFile('parse-transfers');
    this.#checkpointFile = workerFile('checkpoint-wal');
    this.#piscina = new Piscina({
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      niceIncrement: WORKER_NICE,
      // The batching queue above bounds the work; piscina itself never holds
      // more than one task per thread, and this bound only says so.
      maxQueue: threads * 2,
    });
  }

  /** Checks request signatures (see workers/verify-signatures.ts); one outcome per item. */
  verifySignatures(items: readonly VerifyItem[]): Promise<VerifyOutcome[]> {
    return this.#submit(this.#verify, items);
  }

  /** Hex digest of a text's UTF-8 bytes. */
  async digestText(text: string, algorithm: 'sha256'): Promise<string> {
    if (algorithm !== 'sha256') throw new RangeError('algorithm must be sha256');
    const [hex] = await this.#submit(this.#digest, [{ text, algorithm }]);
    return hex as string;
  }

  /**
   * Reads a wallet's get_transfers answer (see workers/parse-transfers.ts);
   * a task of its own, tens of milliseconds for a backlog range.
   */
  parseTransfers(item: ParseTransfersItem): Promise<ParseTransfersOutcome> {
    return this.#runAlone(item, this.#parseFile);
  }

  /** Checkpoints a database's WAL (see workers/checkpoint-wal.ts); a task of its own. */
  checkpointWal(item: CheckpointItem): Promise<CheckpointOutcome> {
    return this.#runAlone(item, this.#checkpointFile);
  }

  /** Piscina tasks finished so far; with batching, far fewer than items. */
  get completedTasks(): number {
    return this.#piscina.completed;
  }

  /** Refuses queued and new work, then waits for running tasks and stops the threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new UnavailableError('the worker pool is shutting down');
    for (const lane of this.#lanes) lane.rejectAll(err);
    await this.#piscina.close();
  }

  #submit<I, O>(lane: Lane<I, O>, items: readonly I[]): Promise<O[]> {
    if (this.#closed) {
      return Promise.reject(new UnavailableError('the worker pool is shutting down'));
    }
    if (this.#queued() + items.length > this.#maxQueue) {
      return Promise.reject(
        new UnavailableError(
          'too many requests are waiting for a worker; retry shortly',
          'overloaded',
        ),
      );
    }

    const answers = lane.enqueue(items);
    this.#scheduleDrain();
    return answers;
  }

  /**
   * One item as a task of its own, counted as a running task so that
   * signature batches wait for a thread rather than pile up in piscina's
   * queue. Each of its callers keeps at most one in flight.
   */
  async #runAlone<I, O>(item: I, filename: string): Promise<O> {
    if (this.#closed) throw new UnavailableError('the worker pool is shutting down');
    this.#running += 1;
    try {
      return (await this.#piscina.run(item, { filename })) as O;
    } finally {
      this.#running -= 1;
      this.#drain();
    }
  }

  #queued(): number {
    let total = 0;
    for (const lane of this.#lanes) total += lane.size;
    return total;
  }

  /**
   * Drains on a microtask so items submitted in the same turn of the event
   * loop leave together; that costs no latency.
   */
  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#running < this.#threads && !this.#closed) {
      const lane = this.#nextLane();
      if (lane === undefined) return;

      this.#running += 1;
      void lane.dispatch(this.#piscina).finally(() => {
        this.#running -= 1;
        this.#drain();
      });
    }
  }

  /** Takes lanes in turn so a flood of one kind cannot starve the other. */
  #nextLane(): Lane<VerifyItem, VerifyOutcome> | Lane<DigestItem, string> | undefined {
    for (let i = 0; i < this.#lanes.length; i += 1) {
      const index = (this.#turn + i) % this.#lanes.length;
      const lane = this.#lanes[index];
      if (lane !== undefined && lane.size > 0) {
        this.#turn = index + 1;
        return lane;
      }
    }
    return undefined;
  }
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  }
}

/**
 * Worker files are compiled to dist/workers/. This module runs from
 * dist/src/work/ in production and from src/work/ under vitest, so the
 * project root is found by walking up to package.json rather than by a
 * fixed relative path.
 */
function workerFile(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find package.json above the worker pool module');
    dir = parent;
  }

  const file = join(dir, 'dist', 'workers', `${name}.js`);
  if (!existsSync(file)) throw new Error(`worker file ${file} is missing; build with tsc first`);
  return file;
}
