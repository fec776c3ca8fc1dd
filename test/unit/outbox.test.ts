import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { InvalidInputError, NotFoundError } from '../../src/errors.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { type EnqueueInput, Outbox } from '../../src/webhooks/outbox.js';

const NOW = 1_800_000_000;

function addMerchant(db: Db, id: string): void {
  db.prepare(
    `INSERT INTO merchants (id, name, webhook_url, webhook_secret, created_at)
     VALUES (?, ?, 'http://127.0.0.1:9/hook', 'secret', ?)`,
  ).run(id, `Merchant ${id}`, NOW);
}

function event(overrides: Partial<EnqueueInput> = {}): EnqueueInput {
  return {
    merchantId: 'm_a',
    invoiceId: 'inv_1',
    type: 'InvoiceCreated',
    metadata: { orderId: 'order-7', buyer: { country: 'IS' } },
    now: NOW,
    ...overrides,
  };
}

function bodyOf(db: Db, id: string): Record<string, unknown> {
  const text = db.prepare('SELECT body FROM webhook_deliveries WHERE id = ?').pluck().get(id);
  return JSON.parse(text as string) as Record<string, unknown>;
}

describe('Outbox', () => {
  let dir: string;
  let db: Db;
  let outbox: Outbox;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stronghold-outbox-'));
    db = openDatabase(join(dir, 'stronghold.db'));
    addMerchant(db, 'm_a');
    addMerchant(db, 'm_b');
    outbox = new Outbox(db);
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes nothing when the transaction that enqueued is rolled back', () => {
    const inTransaction = db.transaction(() => {
      outbox.enqueue(event());
      outbox.enqueue(event({ type: 'InvoiceExpired', extra: { partiallyPaid: false } }));
      throw new Error('the state change failed');
    });

    expect(() => inTransaction()).toThrow('the state change failed');
    expect(db.prepare('SELECT count(*) FROM webhook_deliveries').pluck().get()).toBe(0);
  });

  it('keeps the delivery when the enqueuing transaction commits', () => {
    const id = db.transaction(() => outbox.enqueue(event()))();
    expect(outbox.get(id)?.status).toBe('pending');
  });

  it('writes a BTCPay-shaped body with every field', () => {
    const id = outbox.enqueue(
      event({
        type: 'InvoiceReceivedPayment',
        extra: {
          afterExpiration: false,
          payment: {
            id: 'tx:0',
            value: 1_500_000_000_000n,
            receivedDate: NOW,
            status: 'Processing',
          },
        },
      }),
    );

    expect(id).toMatch(/^wd_[A-Za-z0-9_-]{22}$/);
    expect(bodyOf(db, id)).toEqual({
      deliveryId: id,
      webhookId: 'wh_m_a',
      originalDeliveryId: id,
      isRedelivery: false,
      type: 'InvoiceReceivedPayment',
      timestamp: NOW,
      storeId: 'm_a',
      invoiceId: 'inv_1',
      metadata: { orderId: 'order-7', buyer: { country: 'IS' } },
      afterExpiration: false,
      payment: { id: 'tx:0', value: '1500000000000', receivedDate: NOW, status: 'Processing' },
    });
  });

  it('gives every delivery its own id', () => {
    const ids = new Set(Array.from({ length: 50 }, () => outbox.enqueue(event())));
    expect(ids.size).toBe(50);
  });

  it('makes the delivery due at the time it was enqueued', () => {
    const id = outbox.enqueue(event());
    expect(outbox.get(id)?.nextAttemptAtMs).toBe(NOW * 1000);
  });

  it('rejects an unknown event type', () => {
    expect(() => outbox.enqueue(event({ type: 'InvoicePaid' }))).toThrow(RangeError);
  });

  it('rejects extra fields that would replace a reserved one', () => {
    expect(() => outbox.enqueue(event({ extra: { deliveryId: 'wd_forged' } }))).toThrow(
      RangeError,
    );
  });

  it('rejects metadata that is not an object', () => {
    const metadata = ['not', 'an', 'object'] as unknown as Record<string, unknown>;
    expect(() => outbox.enqueue(event({ metadata }))).toThrow(TypeError);
  });

  it('rejects a merchant that does not exist', () => {
    expect(() => outbox.enqueue(event({ merchantId: 'm_nobody' }))).toThrow(/FOREIGN KEY/);
  });

  it('redelivers under a new id marked as a redelivery of the first delivery', () => {
    const first = outbox.enqueue(event({ extra: { overPaid: true } }));
    const second = outbox.redeliver(first, NOW + 60);
    const third = outbox.redeliver(second, NOW + 120);

    expect(bodyOf(db, second)).toEqual({
      ...bodyOf(db, first),
      deliveryId: second,
      originalDeliveryId: first,
      isRedelivery: true,
      timestamp: NOW + 60,
    });
    expect(bodyOf(db, third)).toMatchObject({ originalDeliveryId: first, isRedelivery: true });
    expect(outbox.get(third)).toMatchObject({
      isRedelivery: true,
      originalDeliveryId: first,
      status: 'pending',
      nextAttemptAtMs: (NOW + 120) * 1000,
    });
  });

  it('refuses to redeliver an unknown delivery', () => {
    expect(() => outbox.redeliver('wd_AAAAAAAAAAAAAAAAAAAAAA', NOW)).toThrow(NotFoundError);
  });

  it('returns undefined for an unknown delivery', () => {
    expect(outbox.get('wd_AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
  });

  it('lists newest first and filters by merchant, invoice and status', () => {
    const a1 = outbox.enqueue(event({ invoiceId: 'inv_1' }));
    const a2 = outbox.enqueue(event({ invoiceId: 'inv_2' }));
    const b1 = outbox.enqueue(event({ merchantId: 'm_b', invoiceId: 'inv_3' }));
    db.prepare('UPDATE webhook_deliveries SET delivered_at = ? WHERE id = ?').run(NOW, a1);
    db.prepare('UPDATE webhook_deliveries SET failed_at = ? WHERE id = ?').run(NOW, b1);
    const ids = (query: Parameters<Outbox['list']>[0]) =>
      outbox.list(query).deliveries.map((d) => d.id);

    expect(ids({ limit: 10 })).toEqual([b1, a2, a1]);
    expect(ids({ limit: 10, merchantId: 'm_a' })).toEqual([a2, a1]);
    expect(ids({ limit: 10, invoiceId: 'inv_2' })).toEqual([a2]);
    expect(ids({ limit: 10, invoiceId: 'inv_3', merchantId: 'm_a' })).toEqual([]);
    expect(ids({ limit: 10, status: 'pending' })).toEqual([a2]);
    expect(ids({ limit: 10, status: 'delivered' })).toEqual([a1]);
    expect(ids({ limit: 10, status: 'failed', merchantId: 'm_b' })).toEqual([b1]);
  });

  it('pages through a listing with the cursor it returns', () => {
    const enqueued = Array.from({ length: 5 }, () => outbox.enqueue(event()));

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const result = outbox.list({ merchantId: 'm_a', limit: 2, cursor });
      seen.push(...result.deliveries.map((d) => d.id));
      if (result.nextCursor === null) break;
      cursor = result.nextCursor;
    }

    expect(seen).toEqual([...enqueued].reverse());
  });

  it('rejects a cursor it did not hand out', () => {
    expect(() => outbox.list({ limit: 2, cursor: 'abc' })).toThrow(InvalidInputError);
  });
});
