import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { WalletRpcError } from '../../src/errors.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { parseTransfer, parseTransfersAnswer } from '../../src/monitor/transfer-parser.js';
import { quoteAmounts, WalletRpcClient } from '../../src/monitor/wallet-rpc-client.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { PaymentStore } from '../../src/storage/payment-store.js';
import { Secrets } from '../../src/tickets/secrets.js';
import { tableContents } from '../support/crash-harness.js';
import { jsonWithBigInts } from '../support/faulty-wallet-rpc.js';
import { silentLogger, tempDir } from '../support/temp-service.js';

/*
 * A malicious or broken wallet RPC: what it answers is generated, from
 * valid transfers to wrong types, negative and huge amounts, absurd
 * heights, payment ids that are not 16 hex digits, and answers that are
 * not JSON at all. Whatever it answers, the monitor neither crashes nor
 * credits an amount other than the one reported, and a poll it cannot
 * understand changes nothing, the cursor included.
 */

const SEED = Number(process.env.HARDENING_SEED ?? 31_337);
const REQUIRED = 10;
const DUST_FLOOR = 1_000_000n;
const MAX_AMOUNT = (1n << 63n) - 1n;
const secrets = new Secrets(randomBytes(32));
const pidTag = (pid: Buffer) => secrets.pidTag(pid);

/**
 * A fake monero-wallet-rpc for answers the real one never gives: each
 * method answers the raw text the test sets, or waits `delayMs` first.
 */
class MaliciousWalletRpc {
  readonly #server: Server;
  answers: Record<string, string> = {};
  delayMs = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<MaliciousWalletRpc> {
    let fake: MaliciousWalletRpc | undefined;
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const { method } = JSON.parse(body) as { method: string };
        const answer = fake!.answers[method] ?? '{"jsonrpc":"2.0","id":0,"result":{}}';
        setTimeout(
          () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer),
          fake!.delayMs,
        );
      });
    });
    fake = new MaliciousWalletRpc(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** get_height answers `height` and get_transfers answers `transfers`, both written as given. */
  serve(height: unknown, transfers: unknown[]): void {
    this.answers = {
      get_height: jsonWithBigInts({ jsonrpc: '2.0', id: 0, result: { height } }),
      get_transfers: jsonWithBigInts({ jsonrpc: '2.0', id: 0, result: { in: transfers } }),
    };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

let wallet: MaliciousWalletRpc;

beforeAll(async () => {
  wallet = await MaliciousWalletRpc.start();
});

afterAll(async () => {
  await wallet.close();
});

// ---- arbitraries -----------------------------------------------------------

type ValidTransfer = {
  txid: string;
  amount: bigint;
  height: number;
  payment_id: string;
  subaddr_index: { major: number; minor: number };
  unlock_time: bigint;
  type: 'in' | 'pool';
  double_spend_seen: false;
};

const hex = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));

function validTransfer(walletHeight: number): fc.Arbitrary<ValidTransfer> {
  return fc.record({
    txid: hex(32),
    amount: fc.oneof(
      fc.bigInt({ min: 1n, max: MAX_AMOUNT }),
      fc.bigInt({ min: 1n, max: DUST_FLOOR }),
      fc.constantFrom(MAX_AMOUNT, 9_007_199_254_740_993n, 1n),
    ),
    height: fc.integer({ min: 1, max: walletHeight }),
    payment_id: fc.oneof(
      { weight: 8, arbitrary: hex(8) },
      fc.constantFrom('0000000000000000', ''),
      hex(32),
    ),
    subaddr_index: fc.record({
      major: fc.integer({ min: 0, max: 3 }),
      minor: fc.integer({ min: 0, max: 0xffffffff }),
    }),
    unlock_time: fc.oneof(
      { weight: 9, arbitrary: fc.constant(0n) },
      fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
    ),
    type: fc.oneof(
      { weight: 9, arbitrary: fc.constant('in' as const) },
      fc.constant('pool' as const),
    ),
    double_spend_seen: fc.constant(false as const),
  });
}

/** One way to break a transfer, each a wrong type, range or shape. */
type Corruption = [field: string, value: unknown];

const corruption: fc.Arbitrary<Corruption> = fc.oneof(
  fc.constantFrom<Corruption>(
    ['amount', -1n],
    ['amount', 0],
    ['amount', 1.5],
    ['amount', 'abc'],
    ['amount', true],
    ['amount', null],
    ['amount', 1n << 63n],
    ['amount', 1n << 64n],
    ['amount', 10n ** 30n],
    ['amount', 1e30],
    ['amount', { value: 5 }],
    ['height', -5],
    ['height', 1.5],
    ['height', '100'],
    ['height', null],
    ['height', 1e300],
    ['height', 2 ** 53],
    ['payment_id', '0123456789abcde'],
    ['payment_id', '0123456789abcdef0'],
    ['payment_id', '0123456789ABCDEF'],
    ['payment_id', '0123456789abcdeg'],
    ['payment_id', 1234567890123456],
    ['payment_id', ['0123456789abcdef']],
    ['txid', 'a'.repeat(63)],
    ['txid', 'A'.repeat(64)],
    ['txid', 12],
    ['txid', undefined],
    ['subaddr_index', undefined],
    ['subaddr_index', { major: -1, minor: 0 }],
    ['subaddr_index', { major: 0, minor: 1.5 }],
    ['subaddr_index', { major: 2 ** 32, minor: 0 }],
    ['subaddr_index', 'x'],
    ['unlock_time', -1n],
    ['unlock_time', 'abc'],
    ['unlock_time', 1.5],
    ['unlock_time', 1n << 70n],
  ),
  fc.string({ unit: 'binary', maxLength: 20 }).map((s): Corruption => ['payment_id', `${s}x`]),
  fc.string({ maxLength: 20 }).map((s): Corruption => ['amount', `${s}!`]),
);

/** A wallet height the client refuses, with the transfers that came with it. */
const badHeight = fc.constantFrom<unknown>(-1, 1.5, '5', null, 1e12, 2 ** 53, true);

type Poll = { walletHeight: number; transfers: ValidTransfer[] };

function poll(minHeight: number): fc.Arbitrary<Poll> {
  return fc.integer({ min: minHeight, max: minHeight + 500 }).chain((walletHeight) =>
    fc.record({
      walletHeight: fc.constant(walletHeight),
      transfers: fc.uniqueArray(validTransfer(walletHeight), {
        maxLength: 12,
        selector: (t) => t.txid,
      }),
    }),
  );
}

type Scenario = {
  first: Poll;
  second: Poll;
  broken: { index: number; corruption: Corruption } | { height: unknown } | null;
};

const scenario: fc.Arbitrary<Scenario> = poll(20).chain((first) =>
  fc.record({
    first: fc.constant(first),
    second: poll(first.walletHeight),
    broken: fc.oneof(
      { weight: 2, arbitrary: fc.constant(null) },
      { weight: 5, arbitrary: fc.record({ index: fc.nat(), corruption }) },
      { weight: 1, arbitrary: fc.record({ height: badHeight }) },
    ),
  }),
);

// ---- what the store must hold ---------------------------------------------

type Expected = { key: string; amount: bigint; state: string };

function expectedRows(transfers: ValidTransfer[], walletHeight: number): Expected[] {
  const rows: Expected[] = [];
  for (const t of transfers) {
    if (t.payment_id.length !== 16 || t.payment_id === '0000000000000000') continue;
    const height = t.type === 'pool' ? 0 : t.height;
    const state =
      t.amount < DUST_FLOOR
        ? 'dust'
        : t.unlock_time !== 0n
          ? 'locked'
          : height > 0 && walletHeight - height >= REQUIRED
            ? 'confirmed'
            : 'pending';
    rows.push({
      key: `${t.txid}:${t.subaddr_index.major}:${t.subaddr_index.minor}`,
      amount: t.amount,
      state,
    });
  }
  return rows.sort((a, b) => a.key.localeCompare(b.key));
}

function storedRows(db: Db): Expected[] {
  const rows = db
    .prepare('SELECT txid, subaddr_major, subaddr_minor, amount, state FROM payments')
    .safeIntegers(true)
    .all() as {
    txid: string;
    subaddr_major: bigint;
    subaddr_minor: bigint;
    amount: bigint;
    state: string;
  }[];
  return rows
    .map((r) => ({
      key: `${r.txid}:${r.subaddr_major}:${r.subaddr_minor}`,
      amount: r.amount,
      state: r.state,
    }))
    .sort((a, b) => a.key.localeCompare(b.key));
}

/**
 * The transfer with one field broken. It is made an incoming transfer with
 * a short payment id first: the parser skips a pool transfer's height and
 * every field of a transfer without a payment id, so those would hide the
 * corruption.
 */
function corrupted(
  transfer: Record<string, unknown> | undefined,
  [field, value]: Corruption,
): Record<string, unknown> {
  const victim: Record<string, unknown> = {
    txid: 'b'.repeat(64),
    amount: 5_000_000n,
    height: 1,
    subaddr_index: { major: 0, minor: 0 },
    unlock_time: 0n,
    ...transfer,
    type: 'in',
    payment_id: 'c'.repeat(16),
  };
  if (value === undefined) delete victim[field];
  else victim[field] = value;
  return victim;
}

function freshMonitor(): { db: Db; payments: PaymentStore; monitor: Monitor } {
  const db = openDatabase(join(tempDir(), 'stronghold.db'));
  const payments = new PaymentStore(db, {
    dustFloor: DUST_FLOOR,
    termsOf: () => ({ requiredConfirmations: REQUIRED, invoiceSeq: null }),
  });
  const monitor = new Monitor({
    rpc: new WalletRpcClient({ url: wallet.url, timeoutMs: 2_000 }),
    payments,
    parse: async (answer, maxHeight) => parseTransfersAnswer(answer, maxHeight, pidTag),
    logger: silentLogger(),
    startHeight: 0,
    reorgWindow: REQUIRED + 2,
    // One range per poll: this wallet answers every get_transfers with the
    // same list, whatever heights were asked for.
    rangeBlocks: Number.MAX_SAFE_INTEGER,
    pollIntervalMs: 50,
    maxBackoffMs: 100,
    onEvents: () => undefined,
  });
  return { db, payments, monitor };
}

// ---- properties -----------------------------------------------------------

describe('the monitor against a malicious wallet RPC', () => {
  const RUNS = 200;

  it(`credits exactly what a valid answer reports and nothing from a broken one (${RUNS} generated wallets)`, async () => {
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ first, second, broken }) => {
        const { db, payments, monitor } = freshMonitor();
        try {
          wallet.serve(first.walletHeight, first.transfers);
          await monitor.pollOnce();
          expect(storedRows(db)).toEqual(expectedRows(first.transfers, first.walletHeight));
          expect(payments.cursor()).toBe(first.walletHeight);

          const before = tableContents(db);
          const transfers: Record<string, unknown>[] = [...first.transfers, ...second.transfers];
          let height: unknown = second.walletHeight;
          if (broken && 'corruption' in broken) {
            const at = broken.index % (transfers.length + 1);
            transfers[at] = corrupted(transfers[at], broken.corruption);
          } else if (broken) {
            height = broken.height;
          }
          wallet.serve(height, transfers);

          if (broken) {
            rejected++;
            await expect(monitor.pollOnce()).rejects.toMatchObject({ code: 'rpc_bad_answer' });
            expect(tableContents(db)).toBe(before);
            expect(payments.cursor()).toBe(first.walletHeight);
          } else {
            await monitor.pollOnce();
            const all = [...first.transfers, ...second.transfers];
            expect(storedRows(db).map((r) => [r.key, r.amount])).toEqual(
              expectedRows(all, second.walletHeight).map((r) => [r.key, r.amount]),
            );
            expect(payments.cursor()).toBe(second.walletHeight);
          }
        } finally {
          await monitor.close();
          db.close();
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
    expect(rejected).toBeGreaterThan(RUNS / 2);
  }, 180_000);

  it('changes nothing when the wallet answers too slowly, then records everything once it answers', async () => {
    const { db, payments, monitor } = freshMonitor();
    try {
      const transfers = fc.sample(validTransfer(100), { numRuns: 5, seed: SEED });
      wallet.serve(100, transfers);
      wallet.delayMs = 2_500;

      await expect(monitor.pollOnce()).rejects.toMatchObject({ code: 'rpc_unreachable' });
      expect(storedRows(db)).toEqual([]);
      expect(payments.cursor()).toBeUndefined();

      wallet.delayMs = 0;
      await monitor.pollOnce();
      expect(storedRows(db)).toEqual(expectedRows(transfers, 100));
    } finally {
      wallet.delayMs = 0;
      await monitor.close();
      db.close();
    }
  }, 30_000);
});

describe('parseTransfer on generated wallet entries', () => {
  const RUNS = 2_000;

  it(`returns a transfer with exactly the reported amount, nothing, or a WalletRpcError (${RUNS} entries)`, () => {
    const entry = fc.oneof(
      validTransfer(1_000).map(
        (t) => JSON.parse(quoteAmounts(jsonWithBigInts(t))) as Record<string, unknown>,
      ),
      fc
        .tuple(validTransfer(1_000), corruption)
        .map(
          ([t, [field, value]]) =>
            JSON.parse(quoteAmounts(jsonWithBigInts({ ...t, [field]: value }))) as Record<
              string,
              unknown
            >,
        ),
      fc.dictionary(
        fc.constantFrom(
          'txid',
          'amount',
          'height',
          'payment_id',
          'subaddr_index',
          'unlock_time',
          'type',
          'x',
        ),
        fc.anything(),
      ),
      fc.anything() as fc.Arbitrary<Record<string, unknown>>,
    );
    fc.assert(
      fc.property(entry, (raw) => {
        let transfer: ReturnType<typeof parseTransfer>;
        try {
          transfer = parseTransfer(raw, 1_000, pidTag);
        } catch (err) {
          expect(err).toBeInstanceOf(WalletRpcError);
          expect((err as WalletRpcError).code).toBe('rpc_bad_answer');
          return;
        }
        if (transfer === undefined) return;
        expect(transfer.amount).toBe(BigInt(String(raw.amount)));
        expect(transfer.amount > 0n && transfer.amount <= MAX_AMOUNT).toBe(true);
        expect(transfer.height >= 0 && transfer.height <= 1_000).toBe(true);
        expect(transfer.txid).toMatch(/^[0-9a-f]{64}$/);
        expect(transfer.pidTag.equals(pidTag(Buffer.from(raw.payment_id as string, 'hex')))).toBe(
          true,
        );
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

describe('quoteAmounts and the JSON-RPC client on generated answers', () => {
  const RUNS = 1_000;

  it(`keeps every amount, fee and unlock_time exact and every other field as it was (${RUNS} answers)`, () => {
    const note = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.constantFrom('"amount": 5', '\\"amount\\": 6', '"amounts":[1,2]', ']', '{"fee":1}'),
    );
    const transfer = fc.record({
      amount: fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
      amounts: fc.array(fc.bigInt({ min: 0n, max: 1n << 70n }), { maxLength: 4 }),
      fee: fc.bigInt({ min: 0n, max: 1n << 64n }),
      unlock_time: fc.bigInt({ min: 0n, max: 1n << 64n }),
      height: fc.integer({ min: 0, max: 10_000_000 }),
      note,
      payment_id: hex(8),
    });
    fc.assert(
      fc.property(fc.array(transfer, { maxLength: 5 }), (transfers) => {
        const text = jsonWithBigInts({ jsonrpc: '2.0', id: 1, result: { in: transfers } });
        const parsed = JSON.parse(quoteAmounts(text)) as {
          result: { in: Record<string, unknown>[] };
        };
        expect(parsed.result.in).toEqual(
          transfers.map((t) => ({
            ...t,
            amount: t.amount.toString(),
            amounts: t.amounts.map(String),
            fee: t.fee.toString(),
            unlock_time: t.unlock_time.toString(),
          })),
        );
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it(`resolves with a valid height and a list, or rejects with a WalletRpcError (${RUNS / 2} answers)`, async () => {
    const rpc = new WalletRpcClient({ url: wallet.url, timeoutMs: 2_000 });
    const answer = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.json(),
      fc
        .record({
          jsonrpc: fc.constant('2.0'),
          id: fc.nat(),
          result: fc.anything(),
          error: fc.option(fc.anything(), { nil: undefined }),
        })
        .map((o) => jsonWithBigInts(o)),
      fc
        .record({ height: fc.anything(), in: fc.anything(), pool: fc.anything() })
        .map((result) => jsonWithBigInts({ jsonrpc: '2.0', id: 1, result })),
    );
    await fc.assert(
      fc.asyncProperty(answer, answer, async (heightText, transfersText) => {
        wallet.answers = { get_height: heightText, get_transfers: transfersText };
        const height: unknown = await rpc.getHeight().catch((err: unknown) => err);
        if (height instanceof Error) expect(height).toBeInstanceOf(WalletRpcError);
        else {
          const value = height as number;
          expect(Number.isSafeInteger(value) && value >= 0 && value <= 1e9).toBe(true);
        }

        const list = await rpc.incomingTransfers(0, 1_000).catch((err: unknown) => err);
        if (list instanceof Error) expect(list).toBeInstanceOf(WalletRpcError);
        else expect(Array.isArray(list)).toBe(true);
      }),
      { numRuns: RUNS / 2, seed: SEED },
    );
  }, 60_000);
});
