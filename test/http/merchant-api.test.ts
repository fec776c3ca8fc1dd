import { createHash, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { createSigner, httpbis } from 'http-message-signatures';
import { describe, expect, it, onTestFinished } from 'vitest';

import { CHECKOUT_HEADERS } from '../../src/checkout/checkout-page.js';
import { decodeAddress, encodeAddress } from '../../src/monero/address.js';
import { DATABASE_FILE } from '../../src/service.js';
import { contentDigest, signRequest } from '../support/sign-request.js';
import { startTempService } from '../support/temp-service.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

type Json = Record<string, any>;
type Answer = { status: number; body: Json; headers: Headers };

/** One Ed25519 key pair of a merchant, and the public key as the admin API takes it. */
type KeyPair = { privateKey: KeyObject; publicKey: string };

function keyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: publicKey.export({ format: 'jwk' }).x as string };
}

function mainnetAddress(): string {
  return encodeAddress({
    network: 'mainnet',
    kind: 'standard',
    publicSpendKey: randomBytes(32),
    publicViewKey: randomBytes(32),
  });
}

async function answer(response: Promise<Response>): Promise<Answer> {
  const res = await response;
  const text = await res.text();
  const body = res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : { text };
  return { status: res.status, body: body as Json, headers: res.headers };
}

const errorShape = (code: string) => ({ error: { code, message: expect.any(String) } });

/**
 * A merchant key as a client holds it. Ed25519 signatures are
 * deterministic, so two identical requests signed with one `created`
 * would share a signature and the second would be refused as a replay;
 * each request therefore gets its own `created`, one second further back
 * than the last from when the key was made, well inside the window.
 */
class MerchantKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly #madeAt = Math.floor(Date.now() / 1000);
  #signed = 0;

  constructor(keyId: string, privateKey: KeyObject) {
    this.keyId = keyId;
    this.privateKey = privateKey;
  }

  nextCreated(): number {
    return this.#madeAt - this.#signed++;
  }
}

type Merchant = { id: string; webhookSecret: string; key: MerchantKey };

/** A real Service on ephemeral ports, with a read-only view of its database for counting rows. */
class Api {
  readonly publicBase: string;
  readonly internalBase: string;
  readonly #db: Database.Database;

  private constructor(publicBase: string, internalBase: string, dbFile: string) {
    this.publicBase = publicBase;
    this.internalBase = internalBase;
    this.#db = new Database(dbFile, { readonly: true, fileMustExist: true });
    onTestFinished(() => {
      this.#db.close();
    });
  }

  static async start(): Promise<Api> {
    const { service, config } = await startTempService({
      primary_address: mainnetAddress(),
      workers: 1,
    });
    return new Api(
      `http://${service.publicListener.url}`,
      `http://${service.internalListener.url}`,
      join(config.data_dir, DATABASE_FILE),
    );
  }

  admin(method: string, path: string, body?: unknown): Promise<Answer> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.headers = { 'content-type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    return answer(fetch(`${this.internalBase}${path}`, init));
  }

  async addMerchant(name = 'Shop', webhookUrl = 'http://127.0.0.1:9/hook'): Promise<Merchant> {
    const pair = keyPair();
    const webhookSecret = randomBytes(24).toString('base64url');
    const res = await this.admin('POST', '/admin/v1/merchants', {
      name,
      public_key: pair.publicKey,
      webhook_url: webhookUrl,
      webhook_secret: webhookSecret,
    });
    expect(res.status).toBe(201);
    return {
      id: res.body.id,
      webhookSecret: res.body.webhook_secret,
      key: new MerchantKey(res.body.key_id, pair.privateKey),
    };
  }

  /** A request to the public listener signed with `key` by the project's signer. */
  signed(
    key: MerchantKey,
    method: string,
    path: string,
    body?: string,
    extraHeaders: Record<string, string> = {},
  ): Promise<Answer> {
    const url = `${this.publicBase}${path}`;
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const signature = signRequest({
      method,
      url,
      headers,
      ...(body === undefined ? {} : { body }),
      privateKey: key.privateKey,
      keyId: key.keyId,
      created: key.nextCreated(),
    });
    return answer(fetch(url, { method, headers: { ...headers, ...signature }, body }));
  }

  createInvoice(key: MerchantKey, body: unknown, headers: Record<string, string> = {}) {
    return this.signed(key, 'POST', '/api/v1/invoices', JSON.stringify(body), headers);
  }

  getInvoice(key: MerchantKey, id: string) {
    return this.signed(key, 'GET', `/api/v1/invoices/${id}`);
  }

  count(table: 'invoices' | 'webhook_deliveries' | 'merchants' | 'merchant_keys'): number {
    return this.#db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  }

  rows() {
    return {
      invoices: this.count('invoices'),
      deliveries: this.count('webhook_deliveries'),
      merchants: this.count('merchants'),
      keys: this.count('merchant_keys'),
    };
  }
}

/** What an invoice's digest covers, rebuilt from the response with keys in sorted order. */
function expectedDigest(invoice: Json, merchantId: string): string {
  const canonical = JSON.stringify({
    address: invoice.address,
    amount_atomic: invoice.amount_atomic,
    confirmations: invoice.confirmations_required,
    created_at: invoice.created_at,
    description: invoice.description,
    expires_at: invoice.expires_at,
    id: invoice.id,
    merchant_id: merchantId,
    metadata: Object.fromEntries(
      Object.entries(invoice.metadata).sort(([a], [b]) => (a < b ? -1 : 1)),
    ),
    order_id: invoice.order_id,
    payment_id: invoice.payment_id,
  });
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

describe('POST /admin/v1/merchants', () => {
  it('answers 201 with the merchant id, its key id and the webhook secret', async () => {
    const api = await Api.start();
    const pair = keyPair();

    const res = await api.admin('POST', '/admin/v1/merchants', {
      name: 'Onion Books',
      public_key: pair.publicKey,
      webhook_url: 'http://books.example/hook',
    });

    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['id', 'key_id', 'webhook_secret']);
    expect(res.body.webhook_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const listed = await api.admin('GET', '/admin/v1/merchants');
    expect(listed.body.merchants).toEqual([
      expect.objectContaining({
        id: res.body.id,
        name: 'Onion Books',
        webhook_url: 'http://books.example/hook',
        disabled_at: null,
        keys: [expect.objectContaining({ key_id: res.body.key_id, revoked_at: null })],
      }),
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(res.body.webhook_secret);
  });

  it.each([
    ['a public key that is not 32 bytes', { public_key: 'AAAA' }, 'invalid_public_key'],
    ['a public key in standard base64', { public_key: `${'+'.repeat(43)}` }, 'invalid_public_key'],
    [
      'a webhook URL that is not http(s)',
      { webhook_url: 'ftp://x.example/' },
      'invalid_webhook_url',
    ],
    [
      'a webhook URL with credentials',
      { webhook_url: 'http://u:p@x.example/' },
      'invalid_webhook_url',
    ],
    ['an empty name', { name: ' ' }, 'invalid_request'],
    ['a webhook secret of 15 characters', { webhook_secret: 'x'.repeat(15) }, 'invalid_request'],
  ])('answers 400 for %s and writes nothing', async (_rule, change, code) => {
    const api = await Api.start();
    const body = {
      name: 'Shop',
      public_key: keyPair().publicKey,
      webhook_url: 'http://shop.example/hook',
      ...change,
    };

    const res = await api.admin('POST', '/admin/v1/merchants', body);

    expect(res).toMatchObject({ status: 400, body: errorShape(code) });
    expect(api.rows()).toMatchObject({ merchants: 0, keys: 0 });
  });
});

describe('POST /api/v1/invoices', () => {
  it('answers 201 with the invoice, its own payment id, address, URI and a checkable digest', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();

    const res = await api.createInvoice(shop.key, {
      amount_atomic: '9223372036854775807',
      order_id: 'order-1',
      description: 'Pro plan',
      metadata: { plan: 'pro', buyer: 17 },
      expires_in: 900,
      confirmations: 3,
    });

    expect(res.status).toBe(201);
    const invoice = res.body;
    expect(invoice).toMatchObject({
      id: expect.stringMatching(/^inv_[A-Za-z0-9_-]{22}$/),
      status: 'New',
      additional_status: 'None',
      amount_atomic: '9223372036854775807',
      received_atomic: '0',
      confirmed_atomic: '0',
      order_id: 'order-1',
      description: 'Pro plan',
      metadata: { plan: 'pro', buyer: 17 },
      payment_id: expect.stringMatching(/^[0-9a-f]{16}$/),
      confirmations_required: 3,
      payments: [],
    });
    expect(invoice.expires_at - invoice.created_at).toBe(900);
    expect(Math.abs(invoice.created_at - Date.now() / 1000)).toBeLessThan(60);
    const decoded = decodeAddress(invoice.address);
    expect(decoded).toMatchObject({ network: 'mainnet', kind: 'integrated' });
    expect(Buffer.from(decoded.paymentId!).toString('hex')).toBe(invoice.payment_id);
    expect(invoice.payment_uri).toMatch(new RegExp(`^monero:${invoice.address}\\?`));
    expect(invoice.payment_uri).toContain('tx_amount=9223372.036854775807');
    expect(invoice.checkout_url).toBe(`${api.publicBase}/pay/${invoice.id}`);
    expect(invoice.digest).toBe(expectedDigest(invoice, shop.id));
  });

  it('gives every invoice a different id, payment id and address', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();

    const a = await api.createInvoice(shop.key, { amount_atomic: '1000' });
    const b = await api.createInvoice(shop.key, { amount_atomic: '1000' });

    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.id).not.toBe(b.body.id);
    expect(a.body.payment_id).not.toBe(b.body.payment_id);
    expect(a.body.address).not.toBe(b.body.address);
    expect(b.body.digest).toBe(expectedDigest(b.body, shop.id));
  });

  it('accepts a request signed by the independent http-message-signatures library', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const body = JSON.stringify({ amount_atomic: '250000000000', order_id: 'lib-1' });
    const url = `${api.publicBase}/api/v1/invoices`;
    const message = {
      method: 'POST',
      url,
      headers: {
        'content-type': 'application/json',
        'content-digest': contentDigest(body, 'sha-512'),
      } as Record<string, string>,
    };

    const signedMessage = await httpbis.signMessage(
      {
        key: createSigner(shop.key.privateKey, 'ed25519', shop.key.keyId),
        fields: ['@method', '@target-uri', 'content-digest', 'content-type'],
        params: ['created', 'keyid', 'alg'],
      },
      message,
    );
    const headers = signedMessage.headers as Record<string, string>;
    const res = await answer(fetch(url, { method: 'POST', headers, body }));

    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ order_id: 'lib-1', amount_atomic: '250000000000' });
  });

  it('returns the existing invoice with 200 for a reused Idempotency-Key, creating nothing', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const headers = { 'idempotency-key': 'req-7f3a' };
    const first = await api.createInvoice(shop.key, { amount_atomic: '5000' }, headers);
    const rows = api.rows();

    const again = await api.createInvoice(shop.key, { amount_atomic: '5000' }, headers);

    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.body).toEqual(first.body);
    expect(api.rows()).toEqual(rows);
    expect(rows.invoices).toBe(1);
  });

  it('returns the existing invoice with 200 for a reused order_id, even with another amount', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const first = await api.createInvoice(shop.key, { amount_atomic: '5000', order_id: 'o-9' });
    const rows = api.rows();

    const again = await api.createInvoice(shop.key, { amount_atomic: '6000', order_id: 'o-9' });

    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.amount_atomic).toBe('5000');
    expect(api.rows()).toEqual(rows);
  });

  it('answers an unsupported content type with 415, changing nothing', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const rows = api.rows();

    const res = await api.signed(shop.key, 'POST', '/api/v1/invoices', 'amount_atomic=5', {
      'content-type': 'application/x-www-form-urlencoded',
    });

    expect(res).toMatchObject({ status: 415, body: errorShape('unsupported_media_type') });
    expect(api.rows()).toEqual(rows);
  });

  const nested = (depth: number): unknown => (depth === 0 ? {} : { n: nested(depth - 1) });
  const valid = { amount_atomic: '5000' };

  it.each<[string, string, Record<string, string>, string]>([
    ['an unknown field', JSON.stringify({ ...valid, colour: 'red' }), {}, 'unknown_field'],
    ['a missing amount_atomic', JSON.stringify({ order_id: 'x' }), {}, 'invalid_amount'],
    [
      'amount_atomic as a JSON number',
      JSON.stringify({ amount_atomic: 5000 }),
      {},
      'invalid_amount',
    ],
    ['amount_atomic of zero', JSON.stringify({ amount_atomic: '0' }), {}, 'invalid_amount'],
    [
      'amount_atomic with a leading zero',
      JSON.stringify({ amount_atomic: '05000' }),
      {},
      'invalid_amount',
    ],
    ['a negative amount_atomic', JSON.stringify({ amount_atomic: '-5000' }), {}, 'invalid_amount'],
    ['a fractional amount_atomic', JSON.stringify({ amount_atomic: '50.5' }), {}, 'invalid_amount'],
    [
      'amount_atomic of 2^63',
      JSON.stringify({ amount_atomic: '9223372036854775808' }),
      {},
      'invalid_amount',
    ],
    [
      'amount_atomic of 20 digits',
      JSON.stringify({ amount_atomic: '1'.repeat(20) }),
      {},
      'invalid_amount',
    ],
    ['an empty order_id', JSON.stringify({ ...valid, order_id: '' }), {}, 'invalid_request'],
    [
      'an order_id of 101 characters',
      JSON.stringify({ ...valid, order_id: 'o'.repeat(101) }),
      {},
      'invalid_request',
    ],
    [
      'an order_id that is a number',
      JSON.stringify({ ...valid, order_id: 17 }),
      {},
      'invalid_request',
    ],
    [
      'a description of 501 characters',
      JSON.stringify({ ...valid, description: 'd'.repeat(501) }),
      {},
      'invalid_request',
    ],
    [
      'a description with a control character',
      JSON.stringify({ ...valid, description: 'a\nb' }),
      {},
      'invalid_request',
    ],
    [
      'metadata that is an array',
      JSON.stringify({ ...valid, metadata: [1] }),
      {},
      'invalid_request',
    ],
    [
      'metadata that is a string',
      JSON.stringify({ ...valid, metadata: 'x' }),
      {},
      'invalid_request',
    ],
    [
      'metadata over 4096 bytes',
      JSON.stringify({ ...valid, metadata: { x: 'm'.repeat(4090) } }),
      {},
      'metadata_too_large',
    ],
    ['expires_in of zero', JSON.stringify({ ...valid, expires_in: 0 }), {}, 'invalid_request'],
    [
      'expires_in above 30 days',
      JSON.stringify({ ...valid, expires_in: 2_592_001 }),
      {},
      'invalid_request',
    ],
    [
      'expires_in with a fraction',
      JSON.stringify({ ...valid, expires_in: 600.5 }),
      {},
      'invalid_request',
    ],
    [
      'expires_in as a string',
      JSON.stringify({ ...valid, expires_in: '600' }),
      {},
      'invalid_request',
    ],
    [
      'confirmations below 0',
      JSON.stringify({ ...valid, confirmations: -1 }),
      {},
      'invalid_request',
    ],
    [
      'confirmations above 100',
      JSON.stringify({ ...valid, confirmations: 101 }),
      {},
      'invalid_request',
    ],
    [
      'confirmations as a boolean',
      JSON.stringify({ ...valid, confirmations: true }),
      {},
      'invalid_request',
    ],
    [
      'an Idempotency-Key with a space',
      JSON.stringify(valid),
      { 'idempotency-key': 'a b' },
      'invalid_request',
    ],
    [
      'an Idempotency-Key of 101 characters',
      JSON.stringify(valid),
      { 'idempotency-key': 'k'.repeat(101) },
      'invalid_request',
    ],
    ['a body that is not JSON', '{"amount_atomic":', {}, 'invalid_json'],
    ['a JSON array body', JSON.stringify([valid]), {}, 'invalid_json'],
    [
      'a body nested deeper than 8 levels',
      JSON.stringify({ ...valid, metadata: nested(8) }),
      {},
      'invalid_json',
    ],
  ])('answers 400 for %s and changes nothing', async (_rule, body, headers, code) => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    await api.createInvoice(shop.key, { amount_atomic: '1000', order_id: 'existing' });
    const rows = api.rows();

    const res = await api.signed(shop.key, 'POST', '/api/v1/invoices', body, headers);

    expect(res).toMatchObject({ status: 400, body: errorShape(code) });
    expect(res.body.error.message.length).toBeGreaterThan(10);
    expect(api.rows()).toEqual(rows);
  });
});

describe('signed invoice routes', () => {
  it('answers every invoice route 401 signature_missing without a signature', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const invoice = (await api.createInvoice(shop.key, { amount_atomic: '1000' })).body;
    const rows = api.rows();

    const requests: [string, string, string?][] = [
      ['POST', '/api/v1/invoices', JSON.stringify({ amount_atomic: '1000' })],
      ['GET', '/api/v1/invoices'],
      ['GET', `/api/v1/invoices/${invoice.id}`],
      ['POST', `/api/v1/invoices/${invoice.id}/cancel`],
    ];
    for (const [method, path, body] of requests) {
      const headers = body === undefined ? undefined : { 'content-type': 'application/json' };
      const res = await answer(fetch(`${api.publicBase}${path}`, { method, headers, body }));
      expect([method, path, res.status, res.body]).toEqual([
        method,
        path,
        401,
        errorShape('signature_missing'),
      ]);
    }
    expect(api.rows()).toEqual(rows);
    expect((await api.getInvoice(shop.key, invoice.id)).body.status).toBe('New');
  });

  it('answers GET /api/v1/invoices/{id} with the invoice as created', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const created = await api.createInvoice(shop.key, {
      amount_atomic: '1000',
      metadata: { a: 1 },
    });

    const res = await api.getInvoice(shop.key, created.body.id);

    expect(res.status).toBe(200);
    expect(res.body).toEqual(created.body);
  });

  it('answers 404 for an invoice id that does not exist', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();

    const res = await api.getInvoice(shop.key, `inv_${randomBytes(16).toString('base64url')}`);

    expect(res).toMatchObject({ status: 404, body: errorShape('not_found') });
  });

  it('keeps each merchant to its own invoices', async () => {
    const api = await Api.start();
    const alice = await api.addMerchant('Alice');
    const bob = await api.addMerchant('Bob');
    const hers = (await api.createInvoice(alice.key, { amount_atomic: '1000', order_id: 'o-1' }))
      .body;

    const peek = await api.getInvoice(bob.key, hers.id);
    const cancel = await api.signed(bob.key, 'POST', `/api/v1/invoices/${hers.id}/cancel`);
    const list = await api.signed(bob.key, 'GET', '/api/v1/invoices');
    const his = await api.createInvoice(bob.key, { amount_atomic: '2000', order_id: 'o-1' });

    expect(peek).toMatchObject({ status: 404, body: errorShape('not_found') });
    expect(cancel).toMatchObject({ status: 404, body: errorShape('not_found') });
    expect(list.body.invoices).toEqual([]);
    expect(his.status).toBe(201);
    expect(his.body.id).not.toBe(hers.id);
    expect((await api.getInvoice(alice.key, hers.id)).body.status).toBe('New');
  });

  it('lists invoices newest first, page by page with the cursor, and by status', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const other = await api.addMerchant('Other');
    await api.createInvoice(other.key, { amount_atomic: '1' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await api.createInvoice(shop.key, { amount_atomic: String(1000 + i) })).body.id);
    }
    await api.signed(shop.key, 'POST', `/api/v1/invoices/${ids[1]}/cancel`);

    const seen: string[] = [];
    let path = '/api/v1/invoices?limit=2';
    const cursors: (string | null)[] = [];
    for (let page = 0; page < 3; page++) {
      const res = await api.signed(shop.key, 'GET', path);
      expect(res.status).toBe(200);
      seen.push(...res.body.invoices.map((i: Json) => i.id));
      cursors.push(res.body.next_cursor);
      path = `/api/v1/invoices?limit=2&cursor=${res.body.next_cursor}`;
    }
    const invalid = await api.signed(shop.key, 'GET', '/api/v1/invoices?status=Invalid');
    const open = await api.signed(shop.key, 'GET', '/api/v1/invoices?status=New&limit=100');

    expect(seen).toEqual([...ids].reverse());
    expect(cursors[0]).toMatch(/^\d+$/);
    expect(cursors[2]).toBeNull();
    expect(invalid.body.invoices.map((i: Json) => i.id)).toEqual([ids[1]]);
    expect(open.body.invoices.map((i: Json) => i.id)).toEqual([ids[4], ids[3], ids[2], ids[0]]);
  });

  it.each([
    ['an unknown status', 'status=Paid'],
    ['a lowercase status', 'status=new'],
    ['a limit of 0', 'limit=0'],
    ['a limit of 101', 'limit=101'],
    ['a limit that is not a number', 'limit=ten'],
    ['a cursor of 0', 'cursor=0'],
    ['a negative cursor', 'cursor=-5'],
  ])('answers GET /api/v1/invoices 400 for %s', async (_rule, query) => {
    const api = await Api.start();
    const shop = await api.addMerchant();

    const res = await api.signed(shop.key, 'GET', `/api/v1/invoices?${query}`);

    expect(res).toMatchObject({ status: 400, body: errorShape('invalid_request') });
  });

  it('cancels a New invoice: Invalid, again idempotently, and InvoiceInvalid in the outbox', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const invoice = (await api.createInvoice(shop.key, { amount_atomic: '1000' })).body;

    const first = await api.signed(shop.key, 'POST', `/api/v1/invoices/${invoice.id}/cancel`);
    const second = await api.signed(shop.key, 'POST', `/api/v1/invoices/${invoice.id}/cancel`);
    const after = await api.getInvoice(shop.key, invoice.id);
    const deliveries = await api.admin(
      'GET',
      `/admin/v1/webhooks/deliveries?invoice_id=${invoice.id}`,
    );

    expect(first).toMatchObject({ status: 200, body: { id: invoice.id, status: 'Invalid' } });
    expect(second).toMatchObject({ status: 200, body: { status: 'Invalid' } });
    expect(after.body.status).toBe('Invalid');
    expect(deliveries.body.deliveries.map((d: Json) => d.type)).toEqual([
      'InvoiceInvalid',
      'InvoiceCreated',
    ]);
  });

  it('writes InvoiceCreated for each invoice and delivers it to the merchant, signed', async () => {
    const secret = randomBytes(24).toString('base64url');
    const receiver = await WebhookReceiver.start(secret);
    onTestFinished(() => receiver.stop());
    const api = await Api.start();
    const pair = keyPair();
    const added = await api.admin('POST', '/admin/v1/merchants', {
      name: 'Hooked',
      public_key: pair.publicKey,
      webhook_url: receiver.url(),
      webhook_secret: secret,
    });
    expect(added.body.webhook_secret).toBe(secret);
    const key = new MerchantKey(added.body.key_id, pair.privateKey);

    const a = (await api.createInvoice(key, { amount_atomic: '1000', metadata: { n: 1 } })).body;
    const b = (await api.createInvoice(key, { amount_atomic: '2000', metadata: { n: 2 } })).body;

    for (const invoice of [a, b]) {
      const res = await api.admin('GET', `/admin/v1/webhooks/deliveries?invoice_id=${invoice.id}`);
      expect(res.body.deliveries).toEqual([
        expect.objectContaining({
          invoice_id: invoice.id,
          merchant_id: added.body.id,
          type: 'InvoiceCreated',
        }),
      ]);
    }
    const accepted = await receiver.waitForAccepted(2);
    const byInvoice = new Map(accepted.map((w) => [w.invoiceId, w]));
    expect(byInvoice.get(a.id)).toMatchObject({
      type: 'InvoiceCreated',
      body: { metadata: { n: 1 } },
    });
    expect(byInvoice.get(b.id)).toMatchObject({
      type: 'InvoiceCreated',
      body: { metadata: { n: 2 } },
    });
  });
});

describe('GET /pay/{id}', () => {
  it('serves the checkout page with its CSP header and the invoice address, unsigned', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const invoice = (
      await api.createInvoice(shop.key, { amount_atomic: '1000', description: 'Tea' })
    ).body;

    const res = await fetch(`${api.publicBase}/pay/${invoice.id}`);
    const html = await res.text();

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(
      CHECKOUT_HEADERS['Content-Security-Policy'],
    );
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(html).toContain(invoice.address);
    expect(html).toContain('Tea');
    expect(html).not.toContain('<script');
  });

  it('answers 404 for an unknown or malformed invoice id', async () => {
    const api = await Api.start();

    const unknown = await answer(fetch(`${api.publicBase}/pay/inv_${'A'.repeat(22)}`));
    const malformed = await answer(fetch(`${api.publicBase}/pay/not-an-invoice`));

    expect(unknown).toMatchObject({ status: 404, body: errorShape('not_found') });
    expect(malformed).toMatchObject({ status: 404, body: errorShape('not_found') });
  });
});

describe('administration', () => {
  it('exists only on the internal listener: every admin route is 404 on the public one', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const routes: [string, string][] = [
      ['GET', '/admin/v1/merchants'],
      ['POST', '/admin/v1/merchants'],
      ['GET', `/admin/v1/merchants/${shop.id}`],
      ['POST', `/admin/v1/merchants/${shop.id}/disable`],
      ['POST', `/admin/v1/merchants/${shop.id}/keys`],
      ['POST', `/admin/v1/merchants/${shop.id}/keys/${shop.key.keyId}/revoke`],
      ['GET', '/admin/v1/webhooks/deliveries'],
      ['GET', `/admin/v1/webhooks/deliveries/wd_${'A'.repeat(22)}`],
    ];
    const rows = api.rows();

    for (const [method, path] of routes) {
      const body =
        method === 'POST' ? JSON.stringify({ public_key: keyPair().publicKey }) : undefined;
      const headers = body ? { 'content-type': 'application/json' } : undefined;
      const res = await answer(fetch(`${api.publicBase}${path}`, { method, headers, body }));
      expect([method, path, res.status, res.body]).toEqual([
        method,
        path,
        404,
        errorShape('not_found'),
      ]);
    }
    expect(api.rows()).toEqual(rows);
    expect((await api.admin('GET', `/admin/v1/merchants/${shop.id}`)).body.disabled_at).toBeNull();
  });

  it("refuses a disabled merchant's signatures with 401 unknown_key", async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const invoice = (await api.createInvoice(shop.key, { amount_atomic: '1000' })).body;

    const disabled = await api.admin('POST', `/admin/v1/merchants/${shop.id}/disable`);
    const read = await api.getInvoice(shop.key, invoice.id);
    const create = await api.createInvoice(shop.key, { amount_atomic: '1000' });

    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled_at).toEqual(expect.any(Number));
    expect(read).toMatchObject({ status: 401, body: errorShape('unknown_key') });
    expect(create).toMatchObject({ status: 401, body: errorShape('unknown_key') });
    expect(api.count('invoices')).toBe(1);
  });

  it('rotates keys: a new key works beside the old one until the old is revoked', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();
    const next = keyPair();

    const added = await api.admin('POST', `/admin/v1/merchants/${shop.id}/keys`, {
      public_key: next.publicKey,
    });
    expect(added.status).toBe(201);
    const newKey = new MerchantKey(added.body.key_id, next.privateKey);
    const byOld = await api.createInvoice(shop.key, { amount_atomic: '1000' });
    const byNew = await api.createInvoice(newKey, { amount_atomic: '2000' });
    expect([byOld.status, byNew.status]).toEqual([201, 201]);
    expect((await api.getInvoice(newKey, byOld.body.id)).status).toBe(200);

    const revoked = await api.admin(
      'POST',
      `/admin/v1/merchants/${shop.id}/keys/${shop.key.keyId}/revoke`,
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.keys).toHaveLength(2);
    expect(revoked.body.keys).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key_id: shop.key.keyId, revoked_at: expect.any(Number) }),
        expect.objectContaining({ key_id: newKey.keyId, revoked_at: null }),
      ]),
    );

    const old = await api.getInvoice(shop.key, byOld.body.id);
    const current = await api.getInvoice(newKey, byNew.body.id);
    expect(old).toMatchObject({ status: 401, body: errorShape('unknown_key') });
    expect(current.status).toBe(200);
  });

  it("refuses to revoke a merchant's last live key with 409 last_key", async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();

    const res = await api.admin(
      'POST',
      `/admin/v1/merchants/${shop.id}/keys/${shop.key.keyId}/revoke`,
    );

    expect(res).toMatchObject({ status: 409, body: errorShape('last_key') });
    expect((await api.signed(shop.key, 'GET', '/api/v1/invoices')).status).toBe(200);
  });

  it('answers 400 invalid_public_key for a rotated key that is not 32 bytes, adding none', async () => {
    const api = await Api.start();
    const shop = await api.addMerchant();

    const res = await api.admin('POST', `/admin/v1/merchants/${shop.id}/keys`, {
      public_key: 'abc',
    });

    expect(res).toMatchObject({ status: 400, body: errorShape('invalid_public_key') });
    expect(api.count('merchant_keys')).toBe(1);
  });

  it('answers 404 for key operations on an unknown merchant', async () => {
    const api = await Api.start();

    const res = await api.admin('POST', '/admin/v1/merchants/m_nobody/keys', {
      public_key: keyPair().publicKey,
    });

    expect(res).toMatchObject({ status: 404, body: errorShape('not_found') });
    expect(api.count('merchant_keys')).toBe(0);
  });
});
