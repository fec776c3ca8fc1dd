import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Hono } from 'hono';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { createBaseApp } from '../../src/http/base-app.js';
import { registerWebhookAdminRoutes } from '../../src/http/webhook-admin-routes.js';
import { Metrics } from '../../src/metrics.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { type EnqueueInput, Outbox } from '../../src/webhooks/outbox.js';
import {
  backoffMs,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
} from '../../src/webhooks/webhook-dispatcher.js';
import { TorStandInSocks5Server } from '../support/socks5-server.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'whsec-dispatcher-test-7f3a';
const FAST_RETRY = { firstDelayMs: 40, maxDelayMs: 160, giveUpAfterMs: 60_000 };

type Harness = {
  dir: string;
  db: Db;
  outbox: Outbox;
  receiver: WebhookReceiver;
  logLines: string[];
  dispatchers: WebhookDispatcher[];
};

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function addMerchant(db: Db, id: string, url: string): void {
  db.prepare(
    `INSERT INTO merchants (id, name, webhook_url, webhook_secret, created_at)
     VALUES (?, ?, ?, ?, ?)`,
  ).run(id, `Merchant ${id}`, url, SECRET, nowSeconds());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function createHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'stronghold-webhooks-'));
  const db = openDatabase(join(dir, 'stronghold.db'));
  const receiver = await WebhookReceiver.start(SECRET);
  addMerchant(db, 'm_a', receiver.url('/hooks/a?auth=query-credential-9d1'));
  addMerchant(db, 'm_b', receiver.url('/hooks/b'));
  return { dir, db, outbox: new Outbox(db), receiver, logLines: [], dispatchers: [] };
}

function startDispatcher(
  h: Harness,
  options: Partial<WebhookDispatcherOptions> = {},
): WebhookDispatcher {
  const logger = pino({ level: 'info' }, { write: (line: string) => h.logLines.push(line) });
  const dispatcher = new WebhookDispatcher({
    db: h.db,
    logger,
    torOnly: false,
    timeoutMs: 1_000,
    pollIntervalMs: 1_000,
    retrySchedule: FAST_RETRY,
    ...options,
  });
  h.dispatchers.push(dispatcher);
  dispatcher.start();
  return dispatcher;
}

function enqueue(h: Harness, input: Partial<EnqueueInput> = {}): string {
  return h.outbox.enqueue({
    merchantId: 'm_a',
    invoiceId: 'inv_1',
    type: 'InvoiceCreated',
    metadata: { orderId: 'order-secret-4471' },
    now: nowSeconds(),
    ...input,
  });
}

async function untilSettled(h: Harness, id: string, timeoutMs = 5_000) {
  await vi.waitFor(() => expect(h.outbox.get(id)?.status).not.toBe('pending'), {
    timeout: timeoutMs,
    interval: 20,
  });
  return h.outbox.get(id)!;
}

async function disposeHarness(h: Harness): Promise<void> {
  for (const dispatcher of h.dispatchers) await dispatcher.close();
  await h.receiver.stop();
  h.db.close();
  rmSync(h.dir, { recursive: true, force: true });
}

describe('WebhookDispatcher', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await createHarness();
  });

  afterEach(async () => {
    await disposeHarness(h);
  });

  it('delivers a body signed with the merchant secret that carries every field', async () => {
    const id = enqueue(h, {
      type: 'InvoicePaymentSettled',
      extra: {
        afterExpiration: false,
        payment: { id: 'tx:1', value: 2_000_000_000_000n, receivedDate: 1, status: 'Settled' },
      },
    });
    startDispatcher(h);

    const [received] = await h.receiver.waitForAccepted(1);

    const expected = createHmac('sha256', SECRET).update(received!.raw).digest('hex');
    expect(received!.headers['btcpay-sig']).toBe(`sha256=${expected}`);
    expect(received!.headers['content-type']).toBe('application/json');
    expect(received!.body).toEqual({
      deliveryId: id,
      webhookId: 'wh_m_a',
      originalDeliveryId: id,
      isRedelivery: false,
      type: 'InvoicePaymentSettled',
      timestamp: expect.any(Number),
      storeId: 'm_a',
      invoiceId: 'inv_1',
      metadata: { orderId: 'order-secret-4471' },
      afterExpiration: false,
      payment: { id: 'tx:1', value: '2000000000000', receivedDate: 1, status: 'Settled' },
    });
    expect(h.receiver.requests[0]?.path).toBe('/hooks/a?auth=query-credential-9d1');
    const delivery = await untilSettled(h, id);
    expect(delivery).toMatchObject({ status: 'delivered', attemptCount: 1, lastStatus: 200 });
  });

  it('delivers every event once and in order per invoice after the merchant was down', async () => {
    await h.receiver.stop();
    const plan: [string, string, string][] = [
      ['m_a', 'inv_1', 'InvoiceCreated'],
      ['m_a', 'inv_2', 'InvoiceCreated'],
      ['m_a', 'inv_1', 'InvoiceReceivedPayment'],
      ['m_b', 'inv_3', 'InvoiceCreated'],
      ['m_a', 'inv_1', 'InvoiceProcessing'],
      ['m_a', 'inv_2', 'InvoiceExpired'],
      ['m_a', 'inv_1', 'InvoiceSettled'],
      ['m_b', 'inv_3', 'InvoiceInvalid'],
    ];
    const ids = plan.map(([merchantId, invoiceId, type]) =>
      enqueue(h, { merchantId, invoiceId, type }),
    );
    const heads = new Set([ids[0], ids[1], ids[3]]);
    startDispatcher(h);

    // While down, only the first event of each invoice is tried.
    await vi.waitFor(
      () => expect(attemptedIds(h.db)).toEqual(heads),
      { timeout: 3_000, interval: 20 },
    );
    await sleep(300);
    expect(attemptedIds(h.db)).toEqual(heads);
    expect(lastErrors(h.db)).toEqual(new Set(['connect_failed']));

    await h.receiver.restart();
    const accepted = await h.receiver.waitForAccepted(ids.length);
    await sleep(200);

    expect(h.receiver.accepted.map((w) => w.deliveryId).sort()).toEqual([...ids].sort());
    for (const invoiceId of ['inv_1', 'inv_2', 'inv_3']) {
      const sent = accepted.filter((w) => w.invoiceId === invoiceId).map((w) => w.deliveryId);
      const queued = ids.filter((_, i) => plan[i]![1] === invoiceId);
      expect(sent).toEqual(queued);
    }
  });

  it.each([408, 429, 500, 503])('retries after a %i answer', async (status) => {
    h.receiver.answer(status);
    const id = enqueue(h);
    startDispatcher(h);

    await h.receiver.waitForRequests(1);
    h.receiver.answer(200);
    const delivery = await untilSettled(h, id);

    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts[0]).toMatchObject({ status, error: null });
    expect(delivery.attempts.at(-1)).toMatchObject({ status: 200, error: null });
  });

  it('marks a delivery failed at once on a 400 and moves on to the next event', async () => {
    h.receiver.answer(400);
    const refused = enqueue(h, { type: 'InvoiceCreated' });
    const next = enqueue(h, { type: 'InvoiceExpired' });
    startDispatcher(h);

    await h.receiver.waitForRequests(1);
    h.receiver.answer(200);
    await h.receiver.waitForAccepted(1);
    await sleep(300);

    expect(h.outbox.get(refused)).toMatchObject({
      status: 'failed',
      attemptCount: 1,
      attempts: [{ status: 400, error: null }],
    });
    expect(h.outbox.get(next)?.status).toBe('delivered');
    expect(h.receiver.requests.filter((r) => r.deliveryId === refused)).toHaveLength(1);
  });

  it('retries after a timeout and records it', async () => {
    h.receiver.hang();
    const id = enqueue(h);
    startDispatcher(h, { timeoutMs: 200 });

    await h.receiver.waitForRequests(1);
    h.receiver.answer(200);
    const delivery = await untilSettled(h, id);

    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts[0]).toMatchObject({ status: null, error: 'timeout' });
    expect(delivery.attempts[0]!.durationMs).toBeGreaterThanOrEqual(190);
  });

  it('gives up once the delivery is older than giveUpAfterMs', async () => {
    h.receiver.answer(503);
    const id = enqueue(h);
    startDispatcher(h, { retrySchedule: { ...FAST_RETRY, giveUpAfterMs: 1_500 } });

    const delivery = await untilSettled(h, id, 8_000);
    const requests = h.receiver.requests.length;
    await sleep(300);

    expect(delivery.status).toBe('failed');
    expect(delivery.attempts.length).toBeGreaterThan(2);
    expect(delivery.attempts.every((a) => a.status === 503)).toBe(true);
    expect(h.receiver.requests).toHaveLength(requests);
  });

  it('carries on with pending deliveries after a restart on the same database', async () => {
    await h.receiver.stop();
    const ids = [
      enqueue(h, { type: 'InvoiceCreated' }),
      enqueue(h, { type: 'InvoiceProcessing' }),
    ];
    const first = startDispatcher(h);
    await vi.waitFor(() => expect(h.outbox.get(ids[0]!)?.attemptCount).toBeGreaterThan(0));
    await first.close();

    h.db.close();
    h.db = openDatabase(join(h.dir, 'stronghold.db'));
    h.outbox = new Outbox(h.db);
    await h.receiver.restart();
    startDispatcher(h);

    const accepted = await h.receiver.waitForAccepted(2);
    expect(accepted.map((w) => w.deliveryId)).toEqual(ids);
    expect(h.outbox.get(ids[0]!)?.attempts[0]).toMatchObject({ error: 'connect_failed' });
  });

  it('sends nothing to a disabled merchant and leaves its deliveries pending', async () => {
    h.db.prepare("UPDATE merchants SET disabled_at = 1 WHERE id = 'm_a'").run();
    const id = enqueue(h);
    const dispatcher = startDispatcher(h);
    dispatcher.kick();
    await sleep(300);

    expect(h.receiver.connections).toHaveLength(0);
    expect(h.outbox.get(id)).toMatchObject({ status: 'pending', attemptCount: 0 });

    h.db.prepare("UPDATE merchants SET disabled_at = NULL WHERE id = 'm_a'").run();
    dispatcher.kick();
    expect((await untilSettled(h, id)).status).toBe('delivered');
  });

  it('sends a delivery queued after start() when kicked, not at the next poll', async () => {
    const dispatcher = startDispatcher(h, { pollIntervalMs: 60_000 });
    await sleep(50);

    const id = enqueue(h);
    dispatcher.kick();

    await h.receiver.waitForAccepted(1, 1_000);
    expect(h.receiver.accepted[0]?.deliveryId).toBe(id);
  });

  it('keeps at most `concurrency` attempts in flight, each for a different invoice', async () => {
    h.receiver.hang();
    for (let i = 0; i < 5; i++) {
      enqueue(h, { invoiceId: `inv_${i}`, type: 'InvoiceCreated' });
      enqueue(h, { invoiceId: `inv_${i}`, type: 'InvoiceSettled' });
    }
    startDispatcher(h, { concurrency: 3, timeoutMs: 5_000, closeTimeoutMs: 100 });

    await h.receiver.waitForRequests(3);
    await sleep(300);

    expect(h.receiver.requests).toHaveLength(3);
    const invoices = h.receiver.requests.map((r) => invoiceOf(h.db, r.deliveryId!));
    expect(new Set(invoices).size).toBe(3);
  });

  it('aborts hung attempts when closing and leaves them pending for the next run', async () => {
    h.receiver.hang();
    const id = enqueue(h);
    const dispatcher = startDispatcher(h, { timeoutMs: 10_000, closeTimeoutMs: 100 });
    await h.receiver.waitForRequests(1);

    const started = Date.now();
    await dispatcher.close();

    expect(Date.now() - started).toBeLessThan(1_000);
    expect(h.outbox.get(id)).toMatchObject({
      status: 'pending',
      attempts: [{ status: null, error: 'aborted' }],
    });
  });

  it('reaches a .onion webhook URL through the SOCKS5 stand-in for Tor', async () => {
    const proxy = await TorStandInSocks5Server.start();
    try {
      proxy.route('merchantxyz.onion', h.receiver.port);
      addMerchant(h.db, 'm_onion', 'http://merchantxyz.onion/hook');
      const id = enqueue(h, { merchantId: 'm_onion' });
      startDispatcher(h, { proxy: proxy.url, torOnly: true });

      const [received] = await h.receiver.waitForAccepted(1);

      expect(received?.deliveryId).toBe(id);
      expect(received?.headers.host).toBe('merchantxyz.onion');
      expect(proxy.requests).toEqual([
        { host: 'merchantxyz.onion', port: 80, addressType: 'domain' },
      ]);
    } finally {
      await proxy.close();
    }
  });

  it('with torOnly and no proxy records refused attempts and opens no connection', async () => {
    const id = enqueue(h);
    startDispatcher(h, { torOnly: true });

    await vi.waitFor(() => expect(h.outbox.get(id)?.attemptCount).toBeGreaterThan(1));

    expect(h.outbox.get(id)).toMatchObject({
      status: 'pending',
      lastError: 'direct_connection_refused',
    });
    expect(h.receiver.connections).toHaveLength(0);
  });

  it('logs deliveries and failures without the secret, the body or the URL query', async () => {
    h.receiver.answer(503);
    const id = enqueue(h);
    startDispatcher(h);
    await h.receiver.waitForRequests(1);
    h.receiver.answer(200);
    await untilSettled(h, id);

    const entries = h.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: 'webhook attempt failed; will retry',
        deliveryId: id,
        status: 503,
        code: 'http_status',
      }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 30,
        msg: 'webhook delivered',
        deliveryId: id,
        type: 'InvoiceCreated',
        status: 200,
      }),
    );
    const all = h.logLines.join('\n');
    for (const leak of [SECRET, 'order-secret-4471', 'query-credential-9d1', '/hooks/a']) {
      expect(all).not.toContain(leak);
    }
  });

  it('rejects a misconfigured option naming it', () => {
    const logger = pino({ level: 'silent' });
    const base = { db: h.db, logger, torOnly: false, timeoutMs: 1_000 };
    expect(() => new WebhookDispatcher({ ...base, concurrency: 0 })).toThrow(/concurrency/);
    expect(() => new WebhookDispatcher({ ...base, timeoutMs: 1.5 })).toThrow(TypeError);
    expect(() => new WebhookDispatcher({ ...base, proxy: 'http://127.0.0.1:9050' })).toThrow(
      /proxy/,
    );
    expect(
      () => new WebhookDispatcher({ ...base, retrySchedule: { firstDelayMs: 10, maxDelayMs: 5 } }),
    ).toThrow(/maxDelayMs/);
  });
});

describe('backoffMs', () => {
  const schedule = { firstDelayMs: 10_000, maxDelayMs: 3_600_000, giveUpAfterMs: 259_200_000 };

  it('doubles from the first delay, drawn from the upper half of each step', () => {
    for (const [failures, step] of [
      [1, 10_000],
      [2, 20_000],
      [5, 160_000],
    ] as const) {
      const delays = Array.from({ length: 200 }, () => backoffMs(failures, schedule));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(step / 2);
      expect(Math.max(...delays)).toBeLessThanOrEqual(step);
      expect(new Set(delays).size).toBeGreaterThan(1);
    }
  });

  it('is capped at the maximum delay', () => {
    expect(backoffMs(30, schedule)).toBeLessThanOrEqual(3_600_000);
    expect(backoffMs(3_000, schedule)).toBeGreaterThanOrEqual(1_800_000);
  });
});

describe('webhook admin routes', () => {
  let h: Harness;
  let app: Hono;
  let dispatcher: WebhookDispatcher;

  beforeEach(async () => {
    h = await createHarness();
    dispatcher = startDispatcher(h);
    const logger = pino({ level: 'silent' });
    const metrics = new Metrics();
    app = createBaseApp({ listener: 'internal', metrics, logger, bodyLimitBytes: 1024 });
    registerWebhookAdminRoutes(app, h.outbox, dispatcher);
  });

  afterEach(async () => {
    await disposeHarness(h);
  });

  /** Queues an event and wakes the dispatcher, as the invoice code does after commit. */
  function queue(input: Partial<EnqueueInput> = {}): string {
    const id = enqueue(h, input);
    dispatcher.kick();
    return id;
  }

  async function json(path: string, init?: RequestInit) {
    const res = await app.request(path, init);
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }

  it('lists deliveries with their attempt count and last outcome', async () => {
    h.receiver.answer(400);
    const id = queue();
    queue({ merchantId: 'm_b', invoiceId: 'inv_9' });
    await untilSettled(h, id);

    const { status, body } = await json('/admin/v1/webhooks/deliveries?merchant_id=m_a');

    expect(status).toBe(200);
    expect(body.next_cursor).toBeNull();
    expect(body.deliveries).toEqual([
      expect.objectContaining({
        id,
        merchant_id: 'm_a',
        invoice_id: 'inv_1',
        type: 'InvoiceCreated',
        status: 'failed',
        is_redelivery: false,
        attempt_count: 1,
        last_status: 400,
        last_error: null,
      }),
    ]);
  });

  it('pages with limit and cursor', async () => {
    h.receiver.hang();
    const ids = [queue(), queue(), queue()];

    const first = await json('/admin/v1/webhooks/deliveries?limit=2');
    const second = await json(
      `/admin/v1/webhooks/deliveries?limit=2&cursor=${first.body.next_cursor}`,
    );

    const listed = [...first.body.deliveries, ...second.body.deliveries].map((d) => d.id);
    expect(listed).toEqual([...ids].reverse());
    expect(second.body.next_cursor).toBeNull();
  });

  it('shows one delivery with every attempt', async () => {
    h.receiver.answer(500);
    const id = queue();
    await h.receiver.waitForRequests(1);
    await h.receiver.stop();
    await vi.waitFor(() => expect(h.outbox.get(id)?.attemptCount).toBeGreaterThanOrEqual(2));

    const { status, body } = await json(`/admin/v1/webhooks/deliveries/${id}`);

    expect(status).toBe(200);
    expect(body.status).toBe('pending');
    expect(body.attempts[0]).toEqual({
      at: expect.any(Number),
      status: 500,
      error: null,
      duration_ms: expect.any(Number),
    });
    expect(body.attempts.at(-1)).toMatchObject({ status: null, error: 'connect_failed' });
    expect(body.attempt_count).toBe(body.attempts.length);
  });

  it('redelivers with 201 and the new delivery, which arrives as a redelivery', async () => {
    const id = queue();
    await h.receiver.waitForAccepted(1);

    const res = await app.request(`/admin/v1/webhooks/deliveries/${id}/redeliver`, {
      method: 'POST',
    });
    const body = (await res.json()) as Record<string, unknown>;

    expect(res.status).toBe(201);
    expect(body).toMatchObject({ is_redelivery: true, original_delivery_id: id });
    expect(res.headers.get('location')).toBe(`/admin/v1/webhooks/deliveries/${body.id}`);
    const [, again] = await h.receiver.waitForAccepted(2);
    expect(again?.body).toMatchObject({
      deliveryId: body.id,
      originalDeliveryId: id,
      isRedelivery: true,
    });
  });

  it('answers 404 for an unknown delivery', async () => {
    const unknown = 'wd_AAAAAAAAAAAAAAAAAAAAAA';
    expect((await json(`/admin/v1/webhooks/deliveries/${unknown}`)).status).toBe(404);
    const redeliver = await json(`/admin/v1/webhooks/deliveries/${unknown}/redeliver`, {
      method: 'POST',
    });
    expect(redeliver).toMatchObject({
      status: 404,
      body: { error: { code: 'delivery_not_found' } },
    });
  });

  it('answers 400 for a malformed delivery id', async () => {
    const { status, body } = await json('/admin/v1/webhooks/deliveries/not-an-id');
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
  });

  it('answers 400 for an unknown status filter', async () => {
    expect((await json('/admin/v1/webhooks/deliveries?status=lost')).status).toBe(400);
  });

  it('answers 400 for a limit out of range', async () => {
    expect((await json('/admin/v1/webhooks/deliveries?limit=0')).status).toBe(400);
    expect((await json('/admin/v1/webhooks/deliveries?limit=201')).status).toBe(400);
  });

  it('answers 400 for a malformed merchant_id', async () => {
    expect((await json('/admin/v1/webhooks/deliveries?merchant_id=a%20b')).status).toBe(400);
  });

  it('answers 400 for a malformed cursor', async () => {
    const { status, body } = await json('/admin/v1/webhooks/deliveries?cursor=xyz');
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_cursor');
  });

  it('answers 400 for an unknown query parameter', async () => {
    const { status, body } = await json('/admin/v1/webhooks/deliveries?merchantid=m_a');
    expect(status).toBe(400);
    expect(body.error.message).toContain('merchantid');
  });
});

function attemptedIds(db: Db): Set<string> {
  const ids = db.prepare('SELECT DISTINCT delivery_id FROM webhook_attempts').pluck().all();
  return new Set(ids as string[]);
}

function lastErrors(db: Db): Set<string | null> {
  const errors = db.prepare('SELECT DISTINCT error FROM webhook_attempts').pluck().all();
  return new Set(errors as (string | null)[]);
}

function invoiceOf(db: Db, deliveryId: string): string {
  const sql = 'SELECT invoice_id FROM webhook_deliveries WHERE id = ?';
  return db.prepare(sql).pluck().get(deliveryId) as string;
}
