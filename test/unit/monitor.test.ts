import { createHash } from 'node:crypto';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { heightChunks, Monitor, type MonitorOptions, nextRange } from '../../src/monitor/monitor.js';
import { parseTransfersAnswer } from '../../src/monitor/transfer-parser.js';
import { WalletRpcClient } from '../../src/monitor/wallet-rpc-client.js';
import { openDatabase } from '../../src/storage/database.js';
import { type PaymentEvent, PaymentStore } from '../../src/storage/payment-store.js';
import { type FakeTransfer, FaultyWalletRpc } from '../support/faulty-wallet-rpc.js';
import { makeTransfer, randomPid, randomTxid, silentLogger, tempDir, waitFor } from '../support/temp-service.js';

const REQUIRED = 10;
const pidTag = (pid: Buffer) => createHash('sha256').update(pid).digest().subarray(0, 16);

function incoming(height: number, amount = 5_000n): FakeTransfer {
  return {
    txid: randomTxid(),
    amount,
    height,
    payment_id: randomPid(),
    subaddr_index: { major: 0, minor: 0 },
    unlock_time: 0n,
  };
}

type Setup = {
  fake: FaultyWalletRpc;
  monitor: Monitor;
  payments: PaymentStore;
  events: PaymentEvent[];
  errors: string[];
  paymentCount(): number;
};

async function setup(
  options: Partial<MonitorOptions> & { timeoutMs?: number } = {},
): Promise<Setup> {
  const fake = await FaultyWalletRpc.start();
  onTestFinished(() => fake.close());
  const db = openDatabase(join(tempDir(), 'stronghold.db'));
  onTestFinished(() => {
    db.close();
  });
  const payments = new PaymentStore(db, {
    dustFloor: 1_000n,
    termsOf: () => ({ requiredConfirmations: REQUIRED, invoiceSeq: null }),
  });
  const events: PaymentEvent[] = [];
  const errors: string[] = [];
  const monitor = new Monitor({
    rpc: new WalletRpcClient({ url: fake.url, timeoutMs: options.timeoutMs ?? 2_000 }),
    payments,
    parse: async (answer, maxHeight) => parseTransfersAnswer(answer, maxHeight, pidTag),
    logger: silentLogger(),
    startHeight: 0,
    reorgWindow: 12,
    // One scan per poll unless a test asks for ranges.
    rangeBlocks: 1_000_000,
    pollIntervalMs: 20,
    maxBackoffMs: 50,
    onEvents: (batch) => events.push(...batch),
    counters: { scanned() {}, ingested() {}, rpcError: (code) => errors.push(code) },
    ...options,
  });
  // Registered last so that it runs first: the monitor stops before the fake and the database.
  onTestFinished(() => monitor.close());
  const count = db.prepare('SELECT count(*) FROM payments').pluck();
  return { fake, monitor, payments, events, errors, paymentCount: () => count.get() as number };
}

/** Resolves to how long `promise` took, or rejects if it takes longer than `limitMs`. */
async function timed(promise: Promise<unknown>, limitMs: number): Promise<number> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${limitMs} ms`)), limitMs);
  });
  try {
    await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
  return Date.now() - started;
}

describe('Monitor', () => {
  it('records every transfer of one poll and moves the cursor to the wallet height', async () => {
    const { fake, monitor, payments, events, paymentCount } = await setup();
    fake.serve({ height: 200, in: [incoming(150), incoming(195)], pool: [incoming(0)] });

    await monitor.pollOnce();

    expect(payments.cursor()).toBe(200);
    expect(paymentCount()).toBe(3);
    expect(events.map((e) => e.kind).sort()).toEqual(['confirmed', 'seen', 'seen', 'seen']);
    expect(monitor.walletHeight).toBe(200);
  });

  it('asks the wallet for transfers from the stored scan start on the next poll', async () => {
    const { fake, monitor } = await setup();
    fake.serve({ height: 200, in: [incoming(150)] });
    await monitor.pollOnce();

    fake.serve({ height: 205, in: [incoming(150)] });
    await monitor.pollOnce();

    const params = fake
      .callsTo('get_transfers')
      .map((c) => [c.params.min_height, c.params.max_height]);
    // No upper bound: a transfer mined between the two calls must not vanish.
    expect(params).toEqual([
      [0, 2 ** 31 - 1],
      [188, 2 ** 31 - 1],
    ]);
  });

  it('counts confirmations against the lower height when the wallet refreshed during a scan', async () => {
    const { fake, monitor, payments } = await setup();
    const early = incoming(191);
    const late = incoming(202);
    // Read at 200, the early transfer has 9 confirmations; the refresh to
    // 203 would give it 12 and the required 10 it does not have yet.
    const refreshed = { height: 203, in: [early, late] };
    fake.serve({ height: 200, in: [early, late], afterTransfers: refreshed });

    await monitor.pollOnce();

    expect(monitor.walletHeight).toBe(200);
    expect(payments.paymentsFor(pidTag(Buffer.from(early.payment_id!, 'hex'))).map((p) => p.state)).toEqual([
      'pending',
    ]);
    expect(payments.paymentsFor(pidTag(Buffer.from(late.payment_id!, 'hex'))).map((p) => p.state)).toEqual([
      'pending',
    ]);

    await monitor.pollOnce();
    expect(monitor.walletHeight).toBe(203);
    expect(payments.paymentsFor(pidTag(Buffer.from(early.payment_id!, 'hex'))).map((p) => p.state)).toEqual([
      'confirmed',
    ]);
  });

  it('refuses a whole poll when one transfer is malformed', async () => {
    const { fake, monitor, payments, paymentCount } = await setup();
    fake.serve({ height: 200, in: [incoming(150), { ...incoming(160), payment_id: 'not hex' }] });

    await expect(monitor.pollOnce()).rejects.toMatchObject({ code: 'rpc_bad_answer' });

    expect(paymentCount()).toBe(0);
    expect(payments.cursor()).toBeUndefined();
  });

  it('survives garbage answers without recording anything, then records everything once they are valid', async () => {
    const { fake, monitor, payments, errors, paymentCount } = await setup();
    fake.serve({ height: 200, in: [incoming(150)] });
    await monitor.pollOnce();
    fake.fail('garbage');

    monitor.start();
    await waitFor('two failed polls', () => errors.length >= 2);

    expect(new Set(errors)).toEqual(new Set(['rpc_bad_answer']));
    expect(payments.cursor()).toBe(200);
    expect(paymentCount()).toBe(1);
    expect(monitor.reachable).toBe(false);

    fake.serve({ height: 230, in: [incoming(150), incoming(210), incoming(220)] });
    await waitFor('the cursor to reach 230', () => payments.cursor() === 230);

    expect(paymentCount()).toBe(3);
    expect(monitor.reachable).toBe(true);
  });

  it('times out a wallet that hangs and keeps polling until it answers again', async () => {
    const { fake, monitor, payments, errors, paymentCount } = await setup({ timeoutMs: 150 });
    fake.fail('hang');

    monitor.start();
    await waitFor('two timed-out polls', () => errors.length >= 2);

    expect(new Set(errors)).toEqual(new Set(['rpc_unreachable']));
    expect(payments.cursor()).toBeUndefined();

    fake.serve({ height: 200, in: [incoming(150)] });
    await waitFor('the cursor to reach 200', () => payments.cursor() === 200);
    expect(paymentCount()).toBe(1);
  });

  it('counts each failed poll by its error code', async () => {
    const { fake, monitor, errors } = await setup();
    fake.fail('http_500');

    monitor.start();
    await waitFor('a failed poll', () => errors.length >= 1);
    await monitor.close();

    expect(errors[0]).toBe('rpc_http_error');
  });

  it('returns from close() at once while backing off', async () => {
    const { fake, monitor, errors } = await setup({ pollIntervalMs: 30_000, maxBackoffMs: 60_000 });
    fake.fail('http_500');
    monitor.start();
    await waitFor('a failed poll', () => errors.length === 1);

    const took = await timed(monitor.close(), 2_000);

    expect(took).toBeLessThan(1_000);
    expect(fake.callsTo('get_height')).toHaveLength(1);
  });

  it('returns from close() when the poll in flight ends, without sleeping again', async () => {
    const { fake, monitor, errors } = await setup({
      timeoutMs: 300,
      pollIntervalMs: 30_000,
      maxBackoffMs: 60_000,
    });
    fake.fail('hang');
    monitor.start();
    await waitFor('a poll in flight', () => fake.callsTo('get_height').length === 1);

    const took = await timed(monitor.close(), 5_000);

    expect(took).toBeLessThan(3_000);
    expect(errors).toEqual(['rpc_unreachable']);
  });

  it('reads a backlog in ranges without the pool, then the rest with the pool', async () => {
    const { fake, monitor, payments, paymentCount } = await setup({ rangeBlocks: 100 });
    const heights = [50, 150, 400, 880, 950, 990];
    fake.serve({ height: 1_000, in: heights.map((h) => incoming(h)), pool: [incoming(0)] });

    const events = await monitor.pollOnce();

    const asked = fake.callsTo('get_transfers').map((c) => [c.params.min_height, c.params.max_height, c.params.pool]);
    // Ranges are fetched two ahead of the one stored, so the size adapts
    // late: after the first range's one transfer the next may be eight
    // times larger, and that takes in all that is left.
    expect(asked).toEqual([
      [0, 100, false],
      [100, 200, false],
      [200, 300, false],
      [300, 2 ** 31 - 1, true],
    ]);
    expect(paymentCount()).toBe(7);
    expect(payments.cursor()).toBe(1_000);
    expect(monitor.walletHeight).toBe(1_000);
    expect(events.filter((e) => e.kind === 'seen')).toHaveLength(7);
  });

  it('keeps the ranges that were read when a later range is malformed, and resumes from them', async () => {
    const { fake, monitor, payments, paymentCount } = await setup({ rangeBlocks: 100 });
    const good = [incoming(50), incoming(950)];
    const broken = { ...incoming(150), payment_id: 'not hex' };
    fake.serve({ height: 1_000, in: [...good, broken] });

    await expect(monitor.pollOnce()).rejects.toMatchObject({ code: 'rpc_bad_answer' });
    expect(payments.cursor()).toBe(100);
    expect(paymentCount()).toBe(1);

    fake.serve({ height: 1_000, in: [...good, incoming(150)] });
    await monitor.pollOnce();

    expect(payments.cursor()).toBe(1_000);
    expect(paymentCount()).toBe(3);
    // The first poll asked for three ranges; the second starts a reorg window below its cursor.
    const resumedAt = fake.callsTo('get_transfers')[3]!.params.min_height;
    expect(resumedAt).toBe(100 - 12);
  });

  it('leaves a pool payment alone while a backlog is read in ranges', async () => {
    const { fake, monitor, payments } = await setup({ rangeBlocks: 100 });
    const pooled = incoming(0);
    fake.serve({ height: 100, in: [], pool: [pooled] });
    await monitor.pollOnce();

    fake.serve({ height: 2_000, in: [incoming(500)], pool: [pooled] });
    const events = await monitor.pollOnce();

    // The transfer at 500 is deep enough on arrival; the pool payment is neither orphaned nor back.
    expect(events.map((e) => e.kind)).toEqual(['seen', 'confirmed']);
    const tag = pidTag(Buffer.from(pooled.payment_id!, 'hex'));
    expect(payments.paymentsFor(tag).map((p) => p.state)).toEqual(['pending']);
  });

  it('reads whole what is left when the wallet falls below the range it was asked for', async () => {
    const { fake, monitor, payments, paymentCount } = await setup({ rangeBlocks: 100 });
    const low = incoming(40);
    // After the first range the wallet starts again from a chain of 60 blocks.
    fake.serve({ height: 1_000, in: [low], afterTransfers: { height: 60, in: [low] } });

    await monitor.pollOnce();

    expect(paymentCount()).toBe(1);
    expect(payments.cursor()).toBe(60);
    const asked = fake.callsTo('get_transfers').map((c) => [c.params.min_height, c.params.max_height]);
    expect(asked).toEqual([
      [0, 100],
      [0, 2 ** 31 - 1],
    ]);
  });
});

describe('Monitor.close during a backlog', () => {
  it('stops after the range being stored, and a later poll goes on from its cursor', async () => {
    let closing: Promise<void> | undefined;
    const stopper = { close: (): Promise<void> => Promise.resolve() };
    // Closed from inside the first range's commit, as a SIGTERM might land.
    const first = await setup({ rangeBlocks: 10, onEvents: () => (closing ??= stopper.close()) });
    stopper.close = () => first.monitor.close();
    const heights = Array.from({ length: 2_000 }, (_, i) => i + 1);
    first.fake.serve({ height: 2_020, in: heights.map((h) => incoming(h)) });

    first.monitor.start();
    await waitFor('close() to be called', () => closing !== undefined);
    await closing;

    expect(first.payments.cursor()).toBe(10);
    expect(first.paymentCount()).toBe(10);

    const resumed = new Monitor({
      rpc: new WalletRpcClient({ url: first.fake.url, timeoutMs: 2_000 }),
      payments: first.payments,
      parse: async (answer, maxHeight) => parseTransfersAnswer(answer, maxHeight, pidTag),
      logger: silentLogger(),
      startHeight: 0,
      reorgWindow: 12,
      rangeBlocks: 10,
      pollIntervalMs: 20,
      maxBackoffMs: 50,
      onEvents: () => undefined,
    });
    await resumed.pollOnce();
    expect(first.payments.cursor()).toBe(2_020);
    expect(first.paymentCount()).toBe(2_000);
  });
});

describe('nextRange', () => {
  it('grows eightfold after an empty range and shrinks toward 8,000 transfers a range', () => {
    expect(nextRange(100, 0)).toBe(800);
    expect(nextRange(100, 16_000)).toBe(50);
    expect(nextRange(100, 8_000)).toBe(100);
    expect(nextRange(100, 1_000_000)).toBe(13);
    expect(nextRange(1, 1_000_000)).toBe(1);
  });
});

describe('heightChunks', () => {
  const at = (height: number) => makeTransfer({ height });

  it('keeps a scan of up to twice the chunk size whole', () => {
    const scan = { transfers: [10, 11, 12, 13].map(at), walletHeight: 50, from: 0 };

    expect(heightChunks(scan, 2)).toEqual([scan]);
  });

  it('cuts between heights only, in height order, with the pool and the top in the last chunk', () => {
    const heights = [15, 11, 11, 12, 12, 12, 13, 14, 16, 17];
    const pool = at(0);
    const scan = { transfers: [...heights.map(at), pool], walletHeight: 50, from: 10 };

    const chunks = heightChunks(scan, 2);

    expect(chunks.map((c) => [c.from, c.to, c.transfers.map((t) => t.height)])).toEqual([
      [10, 11, [11, 11]],
      [11, 12, [12, 12, 12]],
      [12, 14, [13, 14]],
      [14, undefined, [15, 16, 17, 0]],
    ]);
    expect(chunks.every((c) => c.walletHeight === 50)).toBe(true);
    expect(chunks.at(-1)!.transfers.at(-1)).toBe(pool);
  });

  it('ends with the range top of a bounded scan', () => {
    const scan = { transfers: [1, 2, 3, 4, 5, 6, 7].map((h) => at(100 + h)), walletHeight: 500, from: 100, to: 200 };

    const chunks = heightChunks(scan, 2);

    expect(chunks.map((c) => [c.from, c.to])).toEqual([
      [100, 102],
      [102, 104],
      [104, 200],
    ]);
  });
});
