import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Regtest, startRegtest } from '../support/regtest.js';
import { type ChainService, eventually as eventuallyOn, startServiceOn } from '../support/regtest-service.js';
import { signRequest } from '../support/sign-request.js';
import { type ReceivedWebhook, WebhookReceiver } from '../support/webhook-receiver.js';

/*
 * Merchant invoices end to end: a real chain, a real service, a merchant
 * that signs its requests, and a real webhook receiver that checks
 * BTCPay-Sig on every delivery.
 */

const XMR = 1_000_000_000_000n;
const SECRET = randomBytes(24).toString('base64url');

let chain: Regtest;
let receiver: WebhookReceiver;
let running: ChainService;
let api: string;
let internal: string;
const keys = generateKeyPairSync('ed25519');
let keyId: string;

beforeAll(async () => {
  chain = await startRegtest();
  receiver = await WebhookReceiver.start(SECRET);
  running = await startServiceOn(chain, {
    min_confirmations: 2,
    workers: 1,
    webhook_retry_first_delay_ms: 200,
  });
  api = running.api;
  internal = running.internal;

  const publicKey = keys.publicKey.export({ format: 'jwk' }).x!;
  const created = await fetch(`${internal}/admin/v1/merchants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'shop', public_key: publicKey, webhook_url: receiver.url(), webhook_secret: SECRET }),
  });
  expect(created.status).toBe(201);
  keyId = ((await created.json()) as { key_id: string }).key_id;
  await eventually(async () => (await fetch(`${api}/api/v1/info`)).status, (s) => s === 200);
}, 240_000);

afterAll(async () => {
  await running?.close();
  await receiver?.stop();
  await chain?.close();
});

async function signed(method: string, path: string, body?: unknown) {
  const url = `${api}${path}`;
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = text ? { 'content-type': 'application/json' } : {};
  // Polling repeats identical requests within one second; a nonce keeps
  // them from being refused as replays.
  const nonce = randomBytes(12).toString('base64url');
  Object.assign(headers, signRequest({ method, url, headers, body: text, privateKey: keys.privateKey, keyId, nonce }));
  const response = await fetch(url, { method, headers, body: text });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

function eventually<T>(probe: () => Promise<T>, check: (value: T) => boolean, ms?: number): Promise<T> {
  return eventuallyOn(chain, probe, check, ms);
}

async function createInvoice(fields: Record<string, unknown>) {
  const created = await signed('POST', '/api/v1/invoices', fields);
  expect(created).toMatchObject({ status: 201 });
  return created.body;
}

function invoiceState(id: string) {
  return signed('GET', `/api/v1/invoices/${id}`).then((r) => r.body);
}

/** The event types delivered for one invoice, in arrival order. */
function eventsFor(invoiceId: string): string[] {
  return receiver.accepted.filter((w) => w.invoiceId === invoiceId).map((w) => w.type);
}

async function waitForEvents(invoiceId: string, count: number): Promise<ReceivedWebhook[]> {
  await eventually(async () => eventsFor(invoiceId).length, (n) => n >= count);
  return receiver.accepted.filter((w) => w.invoiceId === invoiceId);
}

describe('invoice lifecycle on a regtest chain', () => {
  it('adds partial payments up, then processes and settles, with each webhook in order', async () => {
    const invoice = await createInvoice({ amount_atomic: (XMR / 10n).toString(), order_id: 'order-1', metadata: { cart: 42 } });

    await chain.pay(invoice.address, (XMR * 4n) / 100n);
    const partial = await eventually(() => invoiceState(invoice.id), (i) => i.additional_status === 'PaidPartial');
    expect(partial.status).toBe('New');

    await chain.pay(invoice.address, (XMR * 6n) / 100n);
    const processing = await eventually(() => invoiceState(invoice.id), (i) => i.status === 'Processing');
    expect(processing.received_atomic).toBe((XMR / 10n).toString());
    expect(processing.payments).toHaveLength(2);

    await chain.mine(3);
    const settled = await eventually(() => invoiceState(invoice.id), (i) => i.status === 'Settled');
    expect(settled.confirmed_atomic).toBe((XMR / 10n).toString());

    const webhooks = await waitForEvents(invoice.id, 7);
    expect(eventsFor(invoice.id)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoicePaymentSettled',
      'InvoicePaymentSettled',
      'InvoiceSettled',
    ]);
    for (const webhook of webhooks) {
      expect(webhook.body).toMatchObject({ invoiceId: invoice.id, isRedelivery: false, metadata: { cart: 42 } });
      expect(webhook.headers['btcpay-sig']).toMatch(/^sha256=[0-9a-f]{64}$/);
    }
  }, 240_000);

  it('reports an overpaid invoice as PaidOver', async () => {
    const invoice = await createInvoice({ amount_atomic: (XMR / 10n).toString() });
    await chain.pay(invoice.address, (XMR * 15n) / 100n);
    await chain.mine(3);
    const settled = await eventually(() => invoiceState(invoice.id), (i) => i.status === 'Settled');
    expect(settled.additional_status).toBe('PaidOver');
    await waitForEvents(invoice.id, 5);
    const processing = receiver.accepted.find((w) => w.invoiceId === invoice.id && w.type === 'InvoiceProcessing');
    expect(processing?.body.overPaid).toBe(true);
  }, 240_000);

  it('expires an unpaid invoice and still credits a late payment as PaidLate', async () => {
    const invoice = await createInvoice({ amount_atomic: (XMR / 10n).toString(), expires_in: 10 });
    await eventually(() => invoiceState(invoice.id), (i) => i.status === 'Expired', 60_000);
    await waitForEvents(invoice.id, 2);

    await chain.pay(invoice.address, XMR / 10n);
    await chain.mine(3);
    const late = await eventually(() => invoiceState(invoice.id), (i) => i.status === 'Settled');
    expect(late.additional_status).toBe('PaidLate');
    const webhooks = await waitForEvents(invoice.id, 6);
    expect(webhooks.map((w) => w.type).slice(0, 3)).toEqual(['InvoiceCreated', 'InvoiceExpired', 'InvoiceReceivedPayment']);
    expect(webhooks[2]!.body.afterExpiration).toBe(true);
  }, 240_000);

  it('cancels an unpaid invoice as Invalid', async () => {
    const invoice = await createInvoice({ amount_atomic: (XMR / 10n).toString() });
    const cancelled = await signed('POST', `/api/v1/invoices/${invoice.id}/cancel`);
    expect(cancelled.body.status).toBe('Invalid');
    await waitForEvents(invoice.id, 2);
    expect(eventsFor(invoice.id)).toEqual(['InvoiceCreated', 'InvoiceInvalid']);
  }, 120_000);

  it('invalidates a processing invoice whose payment a real reorg removed', async () => {
    const invoice = await createInvoice({ amount_atomic: (XMR / 10n).toString(), confirmations: 10 });
    await chain.pay(invoice.address, XMR / 10n);
    await chain.mine(2);
    const processing = await eventually(
      () => invoiceState(invoice.id),
      (i) => i.status === 'Processing' && i.payments[0]?.confirmations >= 1,
    );

    // Pop every block down to and including the one holding the payment.
    const depth = (await chain.height()) - (processing.payments[0].height as number);
    await chain.reorg(depth, depth + 3);
    const invalid = await eventually(() => invoiceState(invoice.id), (i) => i.status === 'Invalid');
    expect(invalid.payments[0].state).toBe('orphaned');
    await waitForEvents(invoice.id, 4);
    expect(eventsFor(invoice.id)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoiceInvalid',
    ]);
  }, 240_000);

  it('delivers every event, in order, once per delivery id, after the receiver was down', async () => {
    await receiver.stop();
    const invoice = await createInvoice({ amount_atomic: (XMR / 10n).toString() });
    await chain.pay(invoice.address, XMR / 10n);
    await chain.mine(3);
    await eventually(() => invoiceState(invoice.id), (i) => i.status === 'Settled');
    expect(eventsFor(invoice.id)).toEqual([]);

    await receiver.restart();
    const webhooks = await waitForEvents(invoice.id, 5);
    expect(eventsFor(invoice.id)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoicePaymentSettled',
      'InvoiceSettled',
    ]);
    const ids = webhooks.map((w) => w.deliveryId);
    expect(new Set(ids).size).toBe(ids.length);
  }, 240_000);

  it('still delivers an event after the service was killed between the change and the delivery', async () => {
    const secret = randomBytes(24).toString('base64url');
    const down = await WebhookReceiver.start(secret);
    await down.stop();
    const childDir = mkdtempSync(join(tmpdir(), 'stronghold-killed-'));
    const env = {
      ...process.env,
      STRONGHOLD_DATA_DIR: join(childDir, 'data'),
      STRONGHOLD_PUBLIC_LISTEN: `unix:${join(childDir, 'public.sock')}`,
      STRONGHOLD_INTERNAL_LISTEN: `unix:${join(childDir, 'internal.sock')}`,
      STRONGHOLD_WALLET_RPC_URL: chain.receiverRpcUrl,
      STRONGHOLD_MIN_CONFIRMATIONS: '2',
      STRONGHOLD_POLL_INTERVAL_MS: '100',
      STRONGHOLD_WORKERS: '1',
      STRONGHOLD_WEBHOOK_RETRY_FIRST_DELAY_MS: '200',
      STRONGHOLD_LOG_LEVEL: 'silent',
    };
    const cli = join(process.cwd(), 'dist/src/cli.js');
    const publicKey = keys.publicKey.export({ format: 'jwk' }).x!;
    const added = JSON.parse(
      // The =V forms: a random key or secret starts with a dash one time in 64.
      execFileSync('node', [cli, 'merchant', 'add', '--name', 'killed', `--public-key=${publicKey}`,
        '--webhook-url', down.url(), `--webhook-secret=${secret}`], { env }).toString(),
    ) as { key_id: string };

    const start = () => spawn('node', [cli, 'serve'], { env, stdio: 'ignore' });
    const viaSocket = (socket: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
      new Promise<{ status: number; body: Record<string, any> }>((resolve, reject) => {
        const request = http.request(
          { socketPath: join(childDir, socket), path, method: init.method ?? 'GET', headers: { host: 'stronghold.test', ...init.headers } },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }));
          },
        );
        request.on('error', reject);
        request.end(init.body);
      });
    let child: ChildProcess = start();
    try {
      await eventually(() => viaSocket('public.sock', '/api/v1/info').catch(() => ({ status: 0, body: {} })), (r) => r.status === 200);
      const body = JSON.stringify({ amount_atomic: (XMR / 10n).toString() });
      const url = 'http://stronghold.test/api/v1/invoices';
      const headers = { 'content-type': 'application/json' };
      const signature = signRequest({ method: 'POST', url, headers, body, privateKey: keys.privateKey, keyId: added.key_id });
      const created = await viaSocket('public.sock', '/api/v1/invoices', { method: 'POST', headers: { ...headers, ...signature }, body });
      expect(created.status).toBe(201);
      const invoiceId = created.body.id as string;

      await chain.pay(created.body.address, XMR / 10n);
      await eventually(
        () => viaSocket('internal.sock', `/admin/v1/webhooks/deliveries?invoice_id=${invoiceId}`),
        (r) => r.body.deliveries?.some((d: { type: string }) => d.type === 'InvoiceReceivedPayment'),
      );
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));

      await down.restart();
      child = start();
      const delivered = await (async () => {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          const types = down.accepted.filter((w) => w.invoiceId === invoiceId).map((w) => w.type);
          // Deliveries of one invoice go out one after another, each after
          // the previous one's attempt is recorded: wait for the third.
          if (types.includes('InvoiceProcessing')) return types;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        return down.accepted.map((w) => w.type);
      })();
      expect(delivered.slice(0, 3)).toEqual(['InvoiceCreated', 'InvoiceReceivedPayment', 'InvoiceProcessing']);
    } finally {
      child.kill('SIGTERM');
      await down.stop();
      rmSync(childDir, { recursive: true, force: true });
    }
  }, 240_000);
});
