import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ConfigInput, loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { makeIntegratedAddress } from '../../src/monero/address.js';
import { Service } from '../../src/service.js';
import { type Regtest, startRegtest } from '../support/regtest.js';
import { signRequest } from '../support/sign-request.js';
import { fetchViaSocks, type SocksFetchInit } from '../support/socks-fetch.js';
import { deployDefenceLines, startTorNetwork, type TorNetwork } from '../support/tor-network.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

/*
 * Stronghold behind a real onion service. A private Tor network on
 * 127.0.0.1 puts one onion in front of Stronghold's public unix socket and
 * a second in front of a merchant's webhook receiver, which listens on a
 * unix socket too, so that only tor can reach either. Every customer and
 * merchant request below goes through the client's SOCKS port, the one
 * thing a Tor user has. The chain is a real regtest monerod with wallets.
 */

const CONFIRMATIONS = 2;
const XMR = 1_000_000_000_000n;
const PAYMENT = XMR / 20n;
/** One request through Tor takes about 60 ms warm; a loaded machine takes far longer. */
const ONION_TIMEOUT_MS = 60_000;
/**
 * Bounds each webhook attempt. A delivery to an onion takes well under a
 * second here. A clearnet one never ends by itself: with no exit relay in
 * the network, tor holds the SOCKS request while it waits for a consensus
 * with exits, so this is also how long each such attempt takes to fail.
 */
const WEBHOOK_TIMEOUT_MS = 10_000;
const DEPLOY_TORRC = fileURLToPath(new URL('../../deploy/torrc', import.meta.url));
const fileStartedAt = Date.now();

/** Milliseconds, printed once the file is done. */
const timings: Record<string, number> = {};
const keys = generateKeyPairSync('ed25519');
const onionSecret = randomBytes(24).toString('base64url');
const clearnetSecret = randomBytes(24).toString('base64url');

let dir: string;
let publicSocket: string;
let network: TorNetwork;
let chain: Regtest;
let service: Service;
let internal: string;
let onionReceiver: WebhookReceiver;
let clearnetReceiver: WebhookReceiver;
let onionShopKey: string;
let clearnetShopKey: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stronghold-onion-'));
  publicSocket = join(dir, 'public.sock');
  const hookSocket = join(dir, 'hook.sock');
  onionReceiver = await WebhookReceiver.start(onionSecret, { socketPath: hookSocket });
  clearnetReceiver = await WebhookReceiver.start(clearnetSecret);

  // The network and the chain, the two slow parts, start side by side.
  const startedAt = Date.now();
  const torReady = startTorNetwork({
    services: [
      { name: 'stronghold', target: `unix:${publicSocket}` },
      { name: 'merchant', target: `unix:${hookSocket}` },
    ],
  }).then(async (started) => {
    timings.networkStart = Date.now() - startedAt;
    // The receiver listens already, so its onion is reachable while the
    // chain is still mining: the first fetch through a fresh network.
    await started.waitForOnion('merchant', 120_000);
    timings.firstOnionFetch = Date.now() - startedAt;
    return started;
  });
  const chainReady = startRegtest().then((started) => {
    timings.regtestStart = Date.now() - startedAt;
    return started;
  });
  const [torResult, chainResult] = await Promise.allSettled([torReady, chainReady]);
  if (torResult.status === 'fulfilled') network = torResult.value;
  if (chainResult.status === 'fulfilled') chain = chainResult.value;
  if (torResult.status === 'rejected') throw torResult.reason;
  if (chainResult.status === 'rejected') throw chainResult.reason;

  // Stronghold on the socket the first onion points at, sending through tor only.
  const serviceStartedAt = Date.now();
  service = await startService({
    public_listen: `unix:${publicSocket}`,
    outbound_proxy: network.socksUrl,
    tor_only: true,
  });
  internal = `http://${service.internalListener.url}`;
  const onionHook = `http://${network.onion('merchant')}/hook`;
  onionShopKey = await addMerchant(internal, 'onion-shop', onionHook, onionSecret);
  const clearnetHook = clearnetReceiver.url('/hook');
  clearnetShopKey = await addMerchant(internal, 'clearnet-shop', clearnetHook, clearnetSecret);
  await network.waitForOnion('stronghold', 120_000);
  timings.strongholdOnionAfterServiceStart = Date.now() - serviceStartedAt;
}, 300_000);

afterAll(async () => {
  await service?.close();
  await Promise.all([
    network?.close(),
    chain?.close(),
    onionReceiver?.stop(),
    clearnetReceiver?.stop(),
  ]);
  if (dir) await rm(dir, { recursive: true, force: true });
  timings.wholeFile = Date.now() - fileStartedAt;
  console.info('onion e2e timings (ms):', timings, 'tor start phases (ms):', network?.phases);
}, 60_000);

/** A service reading the regtest receiver; `overrides` picks listeners and the outbound path. */
async function startService(overrides: ConfigInput): Promise<Service> {
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: await mkdtemp(join(dir, 'data-')),
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      wallet_rpc_url: chain.receiverRpcUrl,
      min_confirmations: CONFIRMATIONS,
      poll_interval_ms: 200,
      max_backoff_ms: 1_000,
      workers: 1,
      webhook_timeout_ms: WEBHOOK_TIMEOUT_MS,
      webhook_retry_first_delay_ms: 500,
      log_level: 'silent',
      ...overrides,
    },
  });
  return Service.start(config, createLogger('silent'));
}

/** Registers a merchant on the internal listener; resolves with its key id. */
async function addMerchant(
  base: string,
  name: string,
  webhookUrl: string,
  secret: string,
): Promise<string> {
  const response = await fetch(`${base}/admin/v1/merchants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name,
      public_key: keys.publicKey.export({ format: 'jwk' }).x,
      webhook_url: webhookUrl,
      webhook_secret: secret,
    }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { key_id: string }).key_id;
}

/** Headers of a JSON request signed by the merchant key for `url`. */
function signedHeaders(keyId: string, method: string, url: string, body?: string) {
  const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
  const privateKey = keys.privateKey;
  return { ...headers, ...signRequest({ method, url, headers, body, privateKey, keyId }) };
}

type Answer = { status: number; headers: Record<string, string>; body: string; json: any };

/** One request to Stronghold's onion address, through the SOCKS port only. */
async function viaOnion(path: string, init: SocksFetchInit = {}): Promise<Answer> {
  const url = `http://${network.onion('stronghold')}${path}`;
  const options = { timeoutMs: ONION_TIMEOUT_MS, ...init };
  const response = await fetchViaSocks(network.socksUrl, url, options);
  const isJson = response.headers['content-type']?.startsWith('application/json');
  return { ...response, json: isJson ? JSON.parse(response.body) : undefined };
}

/** A merchant request signed for the onion's own authority, sent through the onion. */
function signedViaOnion(keyId: string, method: string, path: string, body?: unknown) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const url = `http://${network.onion('stronghold')}${path}`;
  const headers = signedHeaders(keyId, method, url, text);
  return viaOnion(path, { method, headers, ...(text === undefined ? {} : { body: text }) });
}

async function createInvoice(keyId: string, fields: Record<string, unknown>): Promise<any> {
  const created = await signedViaOnion(keyId, 'POST', '/api/v1/invoices', fields);
  expect(created.status, created.body).toBe(201);
  return created.json;
}

/** Webhook deliveries as the admin API lists them: one invoice's, or the latest 200. */
async function deliveries(base: string, invoiceId?: string): Promise<any[]> {
  const query = invoiceId === undefined ? 'limit=200' : `invoice_id=${invoiceId}`;
  const response = await fetch(`${base}/admin/v1/webhooks/deliveries?${query}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { deliveries: any[] }).deliveries;
}

/**
 * Refreshes the receiver wallet and probes until `check` passes. A probe
 * that throws (a circuit that failed, say) counts as a miss.
 */
async function eventually<T>(
  probe: () => Promise<T>,
  check: (value: T) => boolean,
  ms = 120_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    await chain.refresh('receiver').catch(() => undefined);
    try {
      const value = await probe();
      if (check(value)) return value;
      last = value;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met in ${ms} ms; last: ${JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/**
 * Mines one block per probe until `check` passes. A payment can land a
 * block later than the next one mined (seen under load), so mining a
 * fixed count and waiting can leave it a confirmation short for good.
 */
function mineUntil<T>(probe: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const probeThenMine = async (): Promise<T> => {
    const value = await probe();
    if (!check(value)) await chain.mine(1);
    return value;
  };
  return eventually(probeThenMine, check, 180_000);
}

describe('Stronghold behind a private Tor network', () => {
  it('answers GET /api/v1/info through its onion, served from the public unix socket', async () => {
    const startedAt = Date.now();
    const info = await eventually(() => viaOnion('/api/v1/info'), (r) => r.status === 200);
    timings.firstInfo = Date.now() - startedAt;

    expect(service.publicListener.url).toBe(`unix:${publicSocket}`);
    expect(info.headers['content-type']).toMatch(/^application\/json/);
    expect(info.json).toMatchObject({
      primary_address: chain.receiverAddress,
      min_confirmations: CONFIRMATIONS,
      payment_id_bytes: 8,
    });
  }, 180_000);

  it('serves no administration route through the onion', async () => {
    const merchants = await viaOnion('/admin/v1/merchants');

    expect(merchants.status).toBe(404);
    expect(merchants.json.error.code).toBe('not_found');
  }, 120_000);

  it('redeems a regtest payment and introspects its token through the onion', async () => {
    const pid = randomBytes(8).toString('hex');
    const address = makeIntegratedAddress(chain.receiverAddress, Buffer.from(pid, 'hex'));
    await chain.pay(address, PAYMENT);

    const redeem = () =>
      viaOnion('/api/v1/redeem', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pid }),
      });
    const success = await mineUntil(redeem, (r) => r.status === 200);
    expect(success.json).toMatchObject({ status: 'success', balance_atomic: PAYMENT.toString() });
    const token = success.json.service_token as string;
    expect(token).toMatch(/^[0-9a-f]{64}$/);

    const status = await viaOnion(`/api/v1/token/${token}`);
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({
      status: 'active',
      balance_atomic: PAYMENT.toString(),
      revoked_at: null,
    });

    const again = await redeem();
    expect(again.json).toMatchObject({ status: 'already_claimed', service_token: token });
  }, 240_000);

  it('creates a signed invoice through the onion and serves its checkout page there', async () => {
    const onion = network.onion('stronghold');
    const amount = (XMR / 10n).toString();

    const invoice = await createInvoice(onionShopKey, { amount_atomic: amount, order_id: 'o-1' });
    expect(invoice.checkout_url).toBe(`http://${onion}/pay/${invoice.id}`);
    expect(invoice.address).not.toBe(chain.receiverAddress);

    const page = await viaOnion(`/pay/${invoice.id}`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain(invoice.address);
  }, 120_000);

  it('refuses a merchant request signed for an authority other than the onion', async () => {
    const path = '/api/v1/invoices';
    const body = JSON.stringify({ amount_atomic: (XMR / 10n).toString() });
    const headers = signedHeaders(onionShopKey, 'POST', `http://127.0.0.1${path}`, body);

    const refused = await viaOnion(path, { method: 'POST', headers, body });

    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('signature_invalid');
  }, 120_000);

  it('delivers signed webhooks to a .onion merchant through the SOCKS proxy', async () => {
    const invoice = await createInvoice(onionShopKey, { amount_atomic: PAYMENT.toString() });
    await chain.pay(invoice.address, PAYMENT);
    const state = () => signedViaOnion(onionShopKey, 'GET', `/api/v1/invoices/${invoice.id}`);
    await mineUntil(state, (r) => r.json?.status === 'Settled');

    const arrived = () =>
      onionReceiver.accepted.filter((w) => w.invoiceId === invoice.id).map((w) => w.type);
    await eventually(async () => arrived(), (types) => types.includes('InvoiceSettled'), 180_000);

    expect(arrived()).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoicePaymentSettled',
      'InvoiceSettled',
    ]);
    const hooks = onionReceiver.requests.filter((r) => r.path === '/hook');
    expect(hooks.length).toBeGreaterThanOrEqual(5);
    expect(hooks.every((r) => r.signatureValid)).toBe(true);
    const listed = await deliveries(internal, invoice.id);
    expect(listed.map((d) => d.status)).toEqual(Array(5).fill('delivered'));
  }, 300_000);

  it('with tor_only, never connects to a clearnet webhook URL directly', async () => {
    const invoice = await createInvoice(clearnetShopKey, { amount_atomic: PAYMENT.toString() });

    // Two attempts, the first and the retry after it failed, unless it settled.
    const [delivery] = await eventually(
      () => deliveries(internal, invoice.id),
      (list) => list[0]?.attempt_count >= 2 || (list[0] && list[0].status !== 'pending'),
      4 * WEBHOOK_TIMEOUT_MS + 60_000,
    );
    const response = await fetch(`${internal}/admin/v1/webhooks/deliveries/${delivery.id}`);
    const detail = (await response.json()) as Record<string, any>;

    expect(detail).toMatchObject({ type: 'InvoiceCreated', status: 'pending', last_status: null });
    expect(detail.attempts.length).toBeGreaterThanOrEqual(2);
    for (const attempt of detail.attempts) {
      // Tor holds the request (there is no exit); the attempt's deadline ends it.
      expect(attempt.status).toBeNull();
      expect(['timeout', 'proxy_failed']).toContain(attempt.error);
    }
    expect(clearnetReceiver.connections).toEqual([]);
    expect(clearnetReceiver.requests).toEqual([]);
  }, 180_000);

  it('without tor_only or a proxy, contacts the same clearnet receiver directly', async () => {
    const torOnlyInvoices = new Set((await deliveries(internal)).map((d) => d.invoice_id));
    const direct = await startService({ tor_only: false, outbound_proxy: '' });
    try {
      const admin = `http://${direct.internalListener.url}`;
      const api = `http://${direct.publicListener.url}`;
      const hook = clearnetReceiver.url('/hook');
      const keyId = await addMerchant(admin, 'clearnet-shop', hook, clearnetSecret);
      await eventually(async () => (await fetch(`${api}/api/v1/info`)).status, (s) => s === 200);

      const url = `${api}/api/v1/invoices`;
      const body = JSON.stringify({ amount_atomic: PAYMENT.toString() });
      const headers = signedHeaders(keyId, 'POST', url, body);
      const created = await fetch(url, { method: 'POST', headers, body });
      expect(created.status).toBe(201);
      const invoice = (await created.json()) as { id: string };

      const [webhook] = await clearnetReceiver.waitForAccepted(1, 60_000);
      expect(webhook).toMatchObject({ invoiceId: invoice.id, type: 'InvoiceCreated' });
      expect(clearnetReceiver.connections.length).toBeGreaterThanOrEqual(1);
      expect(clearnetReceiver.connections[0]!.remoteAddress).toMatch(/127\.0\.0\.1$/);
      expect(clearnetReceiver.accepted.some((w) => torOnlyInvoices.has(w.invoiceId))).toBe(false);
    } finally {
      await direct.close();
    }
  }, 180_000);

  it('runs both onion services with the defences of deploy/torrc', async () => {
    const torrc = await readFile(join(network.dir, 'onion.torrc'), 'utf8');
    const shipped = deployDefenceLines(await readFile(DEPLOY_TORRC, 'utf8'));
    const blocks = torrc
      .split(/^(?=HiddenServiceDir )/m)
      .slice(1)
      .map((block) => block.trim().split('\n'));

    expect(shipped).toContain('HiddenServiceEnableIntroDoSDefense 1');
    expect(shipped).toContain('HiddenServicePoWDefensesEnabled 1');
    expect(blocks).toHaveLength(2);
    for (const block of blocks) {
      expect(block).toContain('HiddenServiceEnableIntroDoSDefense 1');
      expect(block).toContain('HiddenServicePoWDefensesEnabled 1');
      expect(block).toEqual(expect.arrayContaining(shipped));
    }
    expect(blocks[0]).toContain(`HiddenServicePort 80 unix:${publicSocket}`);
  });
});
