import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { openDatabase } from '../../src/storage/database.js';
import { type PaymentEvent, PaymentStore, type Transfer } from '../../src/storage/payment-store.js';
import { TicketStore } from '../../src/storage/ticket-store.js';
import { makeTransfer, randomTxid, tempDir } from '../support/temp-service.js';

const REQUIRED = 10;
const FLOOR = 1_000n;
const NOW = 1_700_000_000;

function openStore(required = REQUIRED) {
  const db = openDatabase(join(tempDir(), 'stronghold.db'));
  onTestFinished(() => {
    db.close();
  });
  const store = new PaymentStore(db, {
    dustFloor: FLOOR,
    termsOf: () => ({ requiredConfirmations: required, invoiceSeq: null }),
  });
  const rows = () =>
    db
      .prepare('SELECT txid, subaddr_major, subaddr_minor, state, height FROM payments ORDER BY id')
      .all();
  return { db, store, balance: (tag: Buffer) => new TicketStore(db).balance(tag), rows };
}

const transfer = makeTransfer;

/** A scan as the monitor applies it; `from: 0` means the wallet was asked for everything. */
function scan(
  store: PaymentStore,
  walletHeight: number,
  transfers: Transfer[],
  from = 0,
): PaymentEvent[] {
  return store.apply({ transfers, walletHeight, from, now: NOW + walletHeight });
}

function stateOf(store: PaymentStore, tag: Buffer): string[] {
  return store.paymentsFor(tag).map((p) => p.state);
}

describe('PaymentStore.apply', () => {
  it('never confirms a pool transfer the wallet flags as double-spent, even at zero confirmations', () => {
    const { store } = openStore(0);
    const contested = transfer({ height: 0, doubleSpendSeen: true });
    const clean = transfer({ height: 0 });

    scan(store, 105, [contested, clean]);

    expect(stateOf(store, contested.pidTag)).toEqual(['pending']);
    expect(stateOf(store, clean.pidTag)).toEqual(['confirmed']);
  });

  it('records a new transfer below the required depth as pending', () => {
    const { store } = openStore();
    const t = transfer({ height: 100 });

    const events = scan(store, 105, [t]);

    expect(events.map((e) => e.kind)).toEqual(['seen']);
    expect(store.paymentsFor(t.pidTag)).toEqual([
      { state: 'pending', amount: 5_000n, height: 100, required_confirmations: REQUIRED },
    ]);
  });

  it('confirms a payment exactly when walletHeight - height reaches the required count', () => {
    const { store } = openStore();
    const t = transfer({ height: 100 });

    scan(store, 100 + REQUIRED - 1, [t]);
    expect(stateOf(store, t.pidTag)).toEqual(['pending']);

    const events = scan(store, 100 + REQUIRED, [t]);
    expect(events.map((e) => e.kind)).toEqual(['confirmed']);
    expect(events[0]!.payment.confirmed_at).toBe(NOW + 100 + REQUIRED);
    expect(stateOf(store, t.pidTag)).toEqual(['confirmed']);
  });

  it('confirms on first sight a transfer that is already deep enough', () => {
    const { store } = openStore();
    const t = transfer({ height: 100 });

    const events = scan(store, 200, [t]);

    expect(events.map((e) => e.kind)).toEqual(['seen', 'confirmed']);
    expect(stateOf(store, t.pidTag)).toEqual(['confirmed']);
  });

  it('reports each new payment exactly as the row it stored', () => {
    const db = openDatabase(join(tempDir(), 'stronghold.db'));
    onTestFinished(() => {
      db.close();
    });
    // The invoice is only a sequence number here; no invoice row backs it.
    db.pragma('foreign_keys = OFF');
    const invoiceTag = randomBytes(16);
    const store = new PaymentStore(db, {
      dustFloor: FLOOR,
      termsOf: (tag) =>
        tag.equals(invoiceTag)
          ? { requiredConfirmations: 3, invoiceSeq: 7 }
          : { requiredConfirmations: REQUIRED, invoiceSeq: null },
    });
    const transfers = [
      transfer({ height: 100 }),
      transfer({ height: 195, pidTag: invoiceTag, minor: 4 }),
      transfer({ amount: FLOOR - 1n }),
      transfer({ unlockTime: 5n }),
      transfer({ height: 0 }),
    ];

    const events = scan(store, 200, transfers);

    const stored = db.prepare('SELECT * FROM payments WHERE id = ?').safeIntegers(true);
    for (const { kind, payment } of events) {
      const row = stored.get(payment.id) as Record<string, unknown>;
      expect(payment.txid).toBe(row.txid);
      if (kind === 'seen' && payment.state === 'pending' && row.state === 'confirmed') continue;
      expect(payment).toEqual({
        ...row,
        id: Number(row.id),
        subaddr_major: Number(row.subaddr_major),
        subaddr_minor: Number(row.subaddr_minor),
        height: Number(row.height),
        required_confirmations: Number(row.required_confirmations),
        first_seen_at: Number(row.first_seen_at),
        confirmed_at: row.confirmed_at === null ? null : Number(row.confirmed_at),
        invoice_seq: row.invoice_seq === null ? null : Number(row.invoice_seq),
      });
    }
    expect(events.map((e) => [e.kind, e.payment.state, e.payment.invoice_seq])).toEqual([
      ['seen', 'pending', null],
      ['seen', 'pending', 7],
      ['ignored', 'dust', null],
      ['ignored', 'locked', null],
      ['seen', 'pending', null],
      ['confirmed', 'confirmed', null],
      ['confirmed', 'confirmed', 7],
    ]);
  });

  it('records a transfer below the dust floor as dust that never counts', () => {
    const { store, balance } = openStore();
    const t = transfer({ amount: FLOOR - 1n, height: 100 });

    const events = scan(store, 101, [t]);
    scan(store, 1_000, [t]);

    expect(events.map((e) => e.kind)).toEqual(['ignored']);
    expect(stateOf(store, t.pidTag)).toEqual(['dust']);
    expect(balance(t.pidTag)).toBe(0n);
  });

  it('counts a transfer of exactly the dust floor', () => {
    const { store, balance } = openStore();
    const t = transfer({ amount: FLOOR, height: 100 });

    scan(store, 1_000, [t]);

    expect(balance(t.pidTag)).toBe(FLOOR);
  });

  it('records a transfer with a nonzero unlock_time as locked that never counts', () => {
    const { store, balance } = openStore();
    const t = transfer({ unlockTime: 1n, height: 100 });

    const events = scan(store, 101, [t]);
    scan(store, 1_000, [t]);

    expect(events.map((e) => e.kind)).toEqual(['ignored']);
    expect(stateOf(store, t.pidTag)).toEqual(['locked']);
    expect(balance(t.pidTag)).toBe(0n);
  });

  it('stores a transfer reported by two scans once', () => {
    const { store, rows, balance } = openStore();
    const t = transfer({ height: 100 });

    scan(store, 105, [t]);
    const events = scan(store, 106, [t]);
    scan(store, 200, [t]);

    expect(events).toEqual([]);
    expect(rows()).toHaveLength(1);
    expect(balance(t.pidTag)).toBe(5_000n);
  });

  it('counts two transfers with different txids to one payment id', () => {
    const { store, balance } = openStore();
    const pidTag = randomBytes(16);
    const first = transfer({ pidTag, amount: 2_000n, height: 100 });
    const second = transfer({ pidTag, amount: 3_000n, height: 101 });

    scan(store, 200, [first, second]);

    expect(stateOf(store, pidTag)).toEqual(['confirmed', 'confirmed']);
    expect(balance(pidTag)).toBe(5_000n);
  });

  it('records one txid that paid two subaddresses as two payments', () => {
    const { store, rows } = openStore();
    const txid = randomTxid();
    const a = transfer({ txid, minor: 1 });
    const b = transfer({ txid, minor: 2 });

    scan(store, 105, [a, b]);

    expect(rows()).toHaveLength(2);
    expect(stateOf(store, a.pidTag)).toEqual(['pending']);
    expect(stateOf(store, b.pidTag)).toEqual(['pending']);
  });

  it('orphans a pending transfer missing from a later scan whose window covers it', () => {
    const { store, balance } = openStore();
    const t = transfer({ height: 100 });
    scan(store, 105, [t]);

    const events = scan(store, 106, [], 99);
    scan(store, 1_000, [], 99);

    expect(events.map((e) => e.kind)).toEqual(['orphaned']);
    expect(events[0]!.payment.orphaned_at).toBe(NOW + 106);
    expect(stateOf(store, t.pidTag)).toEqual(['orphaned']);
    expect(balance(t.pidTag)).toBe(0n);
  });

  it('keeps a pending transfer that a later scan did not cover', () => {
    const { store } = openStore();
    const t = transfer({ height: 100 });
    scan(store, 105, [t]);

    const events = scan(store, 106, [], 100);

    expect(events).toEqual([]);
    expect(stateOf(store, t.pidTag)).toEqual(['pending']);
  });

  it('orphans a pool transfer (height 0) missing from the next scan', () => {
    const { store } = openStore();
    const t = transfer({ height: 0 });
    scan(store, 105, [t], 104);

    const events = scan(store, 106, [], 105);

    expect(events.map((e) => e.kind)).toEqual(['orphaned']);
  });

  it('returns an orphaned transfer that reappears to pending and then confirms it', () => {
    const { store, balance } = openStore();
    const t = transfer({ height: 100 });
    scan(store, 105, [t]);
    scan(store, 106, [], 0);

    const back = scan(store, 107, [t]);
    expect(back.map((e) => e.kind)).toEqual(['reappeared']);
    expect(stateOf(store, t.pidTag)).toEqual(['pending']);

    scan(store, 110, [t]);
    expect(balance(t.pidTag)).toBe(5_000n);
  });

  it('moves a pool transfer to the height of the block that mined it', () => {
    const { store } = openStore();
    const t = transfer({ height: 0 });
    scan(store, 100, [t]);

    scan(store, 105, [{ ...t, height: 103 }]);
    expect(store.paymentsFor(t.pidTag)[0]).toMatchObject({ state: 'pending', height: 103 });

    scan(store, 103 + REQUIRED, [{ ...t, height: 103 }]);
    expect(stateOf(store, t.pidTag)).toEqual(['confirmed']);
  });

  it('never orphans a confirmed payment', () => {
    const { store, balance } = openStore();
    const t = transfer({ height: 100 });
    scan(store, 200, [t]);

    const events = scan(store, 201, [], 0);

    expect(events).toEqual([]);
    expect(stateOf(store, t.pidTag)).toEqual(['confirmed']);
    expect(balance(t.pidTag)).toBe(5_000n);
  });

  it('confirms a payment whose policy requires no confirmations on first sight, even in the pool', () => {
    const { store } = openStore(0);
    const t = transfer({ height: 0 });

    scan(store, 100, [t]);

    expect(stateOf(store, t.pidTag)).toEqual(['confirmed']);
  });
});

describe('PaymentStore cursor', () => {
  it('has no cursor before the first scan', () => {
    const { store } = openStore();

    expect(store.cursor()).toBeUndefined();
  });

  it('equals the wallet height of the last applied scan', () => {
    const { store } = openStore();

    scan(store, 150, [transfer({ height: 100 })]);
    scan(store, 160, []);

    expect(store.cursor()).toBe(160);
  });

  it('moves in the same transaction as the payments: a scan that fails midway changes neither', () => {
    const { store, rows } = openStore();
    const kept = transfer({ height: 100 });
    scan(store, 105, [kept]);
    const before = rows();

    // amount 0 violates the CHECK on payments after the first insert succeeded.
    const failing = [kept, transfer({ height: 104 }), transfer({ amount: 0n, height: 104 })];
    expect(() => scan(store, 130, failing)).toThrow(/CHECK constraint/);

    expect(rows()).toEqual(before);
    expect(store.cursor()).toBe(105);
  });
});

describe('PaymentStore.apply with a range', () => {
  it('moves the cursor to the top of the range, not to the wallet height', () => {
    const { store } = openStore();

    store.apply({ transfers: [transfer({ height: 150 })], walletHeight: 1_000, from: 100, to: 200, now: NOW });

    expect(store.cursor()).toBe(200);
  });

  it('orphans a pending transfer inside the range that the range no longer holds', () => {
    const { store } = openStore();
    const t = transfer({ height: 150 });
    scan(store, 155, [t]);

    const events = store.apply({ transfers: [], walletHeight: 1_000, from: 100, to: 200, now: NOW });

    expect(events.map((e) => e.kind)).toEqual(['orphaned']);
  });

  it('neither orphans nor confirms pending transfers above the range or in the pool', () => {
    const { store } = openStore(0);
    const above = transfer({ height: 250 });
    const pooled = transfer({ height: 0 });
    const { store: strict } = openStore();
    for (const target of [store, strict]) {
      target.apply({ transfers: [above, pooled], walletHeight: 255, from: 0, now: NOW });
    }
    // Required 0 confirms on sight; the strict store keeps both pending.
    const pending = () => strict.paymentsFor(above.pidTag).concat(strict.paymentsFor(pooled.pidTag));
    expect(pending().map((p) => p.state)).toEqual(['pending', 'pending']);

    const events = strict.apply({ transfers: [], walletHeight: 1_000, from: 100, to: 200, now: NOW });

    expect(events).toEqual([]);
    expect(pending().map((p) => p.state)).toEqual(['pending', 'pending']);
  });

  it('leaves a pending transfer below the range to the ranges before it and the last read', () => {
    const { store } = openStore();
    const low = transfer({ height: 50 });
    scan(store, 55, [low]);

    const events = store.apply({ transfers: [], walletHeight: 1_000, from: 100, to: 200, now: NOW });
    expect(events).toEqual([]);
    expect(stateOf(store, low.pidTag)).toEqual(['pending']);

    scan(store, 1_000, [low], 200);
    expect(stateOf(store, low.pidTag)).toEqual(['confirmed']);
  });

  it('confirms a pending transfer inside the range once it is deep enough', () => {
    const { store } = openStore();
    const t = transfer({ height: 150 });
    scan(store, 155, [t]);

    const events = store.apply({ transfers: [t], walletHeight: 1_000, from: 100, to: 200, now: NOW });

    expect(events.map((e) => e.kind)).toEqual(['confirmed']);
    expect(stateOf(store, t.pidTag)).toEqual(['confirmed']);
  });
});

describe('PaymentStore.scanFrom', () => {
  it('starts just below start_height before the first scan', () => {
    const { store } = openStore();

    expect(store.scanFrom(500, 12)).toBe(499);
    expect(store.scanFrom(0, 12)).toBe(0);
  });

  it('rescans the reorg window below the cursor when nothing is pending', () => {
    const { store } = openStore();
    scan(store, 200, [transfer({ height: 100 })]);

    expect(store.scanFrom(0, 12)).toBe(188);
  });

  it('keeps the reorg window when the lowest pending payment lies inside it', () => {
    const { store } = openStore();
    scan(store, 200, [transfer({ height: 195 })], 190);

    expect(store.scanFrom(0, 12)).toBe(188);
  });

  it('starts below a pending payment that is older than the reorg window', () => {
    const { store } = openStore(1_000);
    scan(store, 200, [transfer({ height: 50 })]);

    expect(store.scanFrom(0, 12)).toBe(49);
  });

  it('ignores pending pool transfers when choosing the start', () => {
    const { store } = openStore();
    scan(store, 200, [transfer({ height: 0 })], 199);

    expect(store.scanFrom(0, 12)).toBe(188);
  });
});
