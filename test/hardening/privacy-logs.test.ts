import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, type AgentOptions, request } from 'node:http';
import { createConnection, type Socket } from 'node:net';

import { describe, expect, it, onTestFinished } from 'vitest';

import { createLogger } from '../../src/logger.js';
import { Service } from '../../src/service.js';
import { type FakeTransfer, FaultyWalletRpc } from '../support/faulty-wallet-rpc.js';
import { RECORDED_ADDRESS } from '../support/recorded-wallet-rpc.js';
import { signRequest } from '../support/sign-request.js';
import { randomPid, randomTxid, tempConfig, waitFor } from '../support/temp-service.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

/*
 * The whole flow with logging at debug: the monitor ingests from a wallet
 * stand-in, a customer redeems and introspects, the operator adds a
 * merchant and revokes a token, the merchant creates, reads and cancels
 * signed invoices, a customer opens the checkout page, and webhooks are
 * delivered. Then every line written is searched for what must never be
 * logged: payment ids, tokens and their hashes, keys, signatures, digests,
 * the webhook secret, the server secret, merchant data, the clients' user
 * agent and their addresses and ports. The only address allowed is the
 * server's own, in the line that says where it listens.
 */

const USER_AGENT = 'PrivacyProbe/7.3 (distinctive-ua-e5a1c9)';
const WEBHOOK_SECRET = 'privacy-webhook-secret-4f1d2e';
const CUSTOMER = 'alice.customer@example.onion';
const ORDER = 'order-privacy-8812';
const DESCRIPTION = 'Hosting for a distinctive description 77ab';
const TICKET_PID = randomPid();
const CONFIRMATIONS = 2;

type Answer = { status: number; text: string; json: Record<string, any> };

/** An HTTP client that sends the distinctive user agent and notes the local port of every connection. */
class TrackedClient {
  readonly ports = new Set<number>();
  readonly sent: Record<string, string>[] = [];
  readonly #agent: Agent;

  constructor() {
    const ports = this.ports;
    class TrackingAgent extends Agent {
      override createConnection(options: AgentOptions & { port: number; host: string }): Socket {
        const socket = createConnection({ port: options.port, host: options.host });
        socket.once('connect', () => ports.add(socket.localPort!));
        return socket;
      }
    }
    this.#agent = new TrackingAgent({ keepAlive: true });
  }

  send(
    url: string,
    options: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Answer> {
    const target = new URL(url);
    const headers = { 'user-agent': USER_AGENT, ...options.headers };
    this.sent.push(headers);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.#agent,
          host: target.hostname,
          port: target.port,
          path: `${target.pathname}${target.search}`,
          method: options.method ?? 'GET',
          headers,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            const json = res.headers['content-type']?.startsWith('application/json')
              ? (JSON.parse(text) as Record<string, any>)
              : {};
            resolve({ status: res.statusCode ?? 0, text, json });
          });
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

describe('logs at debug level', () => {
  it('hold no payment id, token, key, signature, secret, merchant data, user agent or client address', async () => {
    // The service, its wallet and a merchant's endpoint.
    const wallet = await FaultyWalletRpc.start();
    onTestFinished(() => wallet.close());
    const ticketPayment: FakeTransfer = {
      txid: randomTxid(),
      amount: 4_000_000_000_000n,
      height: 90,
      payment_id: TICKET_PID,
      subaddr_index: { major: 0, minor: 0 },
    };
    wallet.serve({ height: 100, address: RECORDED_ADDRESS, in: [ticketPayment] });
    const receiver = await WebhookReceiver.start(WEBHOOK_SECRET);
    onTestFinished(() => receiver.stop());
    const lines: string[] = [];
    const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
    const config = await tempConfig({
      wallet_rpc_url: wallet.url,
      min_confirmations: CONFIRMATIONS,
      log_level: 'debug',
    });
    const service = await Service.start(config, logger);
    let closed = false;
    onTestFinished(async () => {
      if (!closed) await service.close(100);
    });
    const client = new TrackedClient();
    onTestFinished(() => client.close());
    const publicUrl = `http://${service.publicListener.url}`;
    const internalUrl = `http://${service.internalListener.url}`;
    await waitFor(
      'the wallet address',
      async () => (await client.send(`${publicUrl}/api/v1/info`)).status === 200,
      15_000,
    );

    // The operator adds a merchant.
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const rawPublicKey = publicKey.export({ format: 'jwk' }).x as string;
    const added = await client.send(`${internalUrl}/admin/v1/merchants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Privacy Shop',
        public_key: rawPublicKey,
        webhook_url: receiver.url('/hook?shop=1'),
        webhook_secret: WEBHOOK_SECRET,
      }),
    });
    expect(added.status).toBe(201);
    const keyId = added.json.key_id as string;
    const signed = (method: string, path: string, body?: string) => {
      const url = `${publicUrl}${path}`;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      Object.assign(headers, signRequest({ method, url, headers, body, privateKey, keyId }));
      return client.send(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    };

    // A customer redeems, introspects; the operator revokes.
    const redeemed = await client.send(`${publicUrl}/api/v1/redeem`, jsonPost({ pid: TICKET_PID }));
    expect(redeemed.json.status).toBe('success');
    const token = redeemed.json.service_token as string;
    expect((await client.send(`${publicUrl}/api/v1/token/${token}`)).status).toBe(200);
    const revoked = await client.send(
      `${internalUrl}/api/v1/token/${token}/revoke`,
      jsonPost({ reason: 'abuse report', abuse_score: 7 }),
    );
    expect(revoked.json.status).toBe('revoked');
    expect(
      (await client.send(`${publicUrl}/api/v1/redeem`, jsonPost({ pid: TICKET_PID }))).json.status,
    ).toBe('already_claimed');

    // Refusals take the error paths.
    expect((await client.send(`${publicUrl}/api/v1/redeem`, jsonPost({ pid: 'zz' }))).status).toBe(
      400,
    );
    expect(
      (await client.send(`${publicUrl}/api/v1/redeem`, jsonPost({ pid: randomPid() }))).status,
    ).toBe(404);
    expect((await client.send(`${publicUrl}/api/v1/token/${'0'.repeat(64)}`)).status).toBe(404);
    expect(
      (await client.send(`${publicUrl}/api/v1/invoices`, jsonPost({ amount_atomic: '1' }))).status,
    ).toBe(401);

    // The merchant's invoices and a customer's checkout page.
    const invoiceBody = JSON.stringify({
      amount_atomic: '3000000000000',
      order_id: ORDER,
      description: DESCRIPTION,
      metadata: { customer: CUSTOMER },
    });
    const invoice = await signed('POST', '/api/v1/invoices', invoiceBody);
    expect(invoice.status).toBe(201);
    const other = await signed(
      'POST',
      '/api/v1/invoices',
      JSON.stringify({ amount_atomic: '1000000000000' }),
    );
    expect((await signed('GET', `/api/v1/invoices/${invoice.json.id}`)).status).toBe(200);
    expect((await signed('GET', '/api/v1/invoices?limit=5')).status).toBe(200);
    expect((await signed('POST', `/api/v1/invoices/${other.json.id}/cancel`)).status).toBe(200);
    expect((await signed('POST', '/api/v1/invoices', '{"amount_atomic": 5}')).status).toBe(400);
    expect((await client.send(`${publicUrl}/pay/${invoice.json.id}`)).status).toBe(200);

    // The invoice is paid and confirmed; webhooks go out.
    const invoicePayment: FakeTransfer = {
      txid: randomTxid(),
      amount: 3_000_000_000_000n,
      height: 101,
      payment_id: invoice.json.payment_id,
      subaddr_index: { major: 0, minor: 0 },
    };
    wallet.serve({ height: 101, address: RECORDED_ADDRESS, in: [ticketPayment, invoicePayment] });
    await waitFor(
      'the payment to be seen',
      () => receiver.accepted.some((w) => w.type === 'InvoiceReceivedPayment'),
      20_000,
    );
    wallet.serve({
      height: 101 + CONFIRMATIONS,
      address: RECORDED_ADDRESS,
      in: [ticketPayment, invoicePayment],
    });
    await waitFor(
      'the invoice to settle',
      () => receiver.accepted.some((w) => w.type === 'InvoiceSettled'),
      20_000,
    );
    await receiver.waitForAccepted(5, 20_000);
    await service.close(100);
    closed = true;

    // What the log holds.
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toEqual(
      expect.arrayContaining(['listening', 'payments updated', 'webhook delivered', 'stopped']),
    );
    const forbidden = [
      TICKET_PID,
      token,
      createHash('sha256').update(token).digest('hex'),
      invoice.json.payment_id as string,
      other.json.payment_id as string,
      WEBHOOK_SECRET,
      rawPublicKey,
      readFileSync(config.secret_file, 'utf8').trim(),
      USER_AGENT,
      CUSTOMER,
      ORDER,
      DESCRIPTION,
      ...client.sent.flatMap((headers) =>
        ['signature', 'signature-input', 'content-digest'].flatMap((name) =>
          signatureParts(headers[name]),
        ),
      ),
    ];
    const log = lines.join('');
    for (const secret of forbidden) expect(log, 'a secret in the log').not.toContain(secret);
    for (const key of [
      'user-agent',
      'remoteAddress',
      'remotePort',
      'x-forwarded-for',
      'signature-input',
    ]) {
      expect(log.toLowerCase()).not.toContain(key.toLowerCase());
    }
    expect(client.ports.size).toBeGreaterThan(0);
    for (const port of client.ports) expect(log).not.toMatch(new RegExp(`[:"\\]]${port}(?!\\d)`));
    for (const line of lines) {
      const addresses = [
        ...line.matchAll(/(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])|::ffff:|::1(?![\d:a-f])/gi),
      ];
      if (addresses.length > 0)
        expect((JSON.parse(line) as { msg: string }).msg, line).toBe('listening');
    }
  }, 120_000);
});

function jsonPost(body: unknown) {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

/** The parts of a signature header worth searching for: the whole value and each byte sequence in it. */
function signatureParts(value: string | undefined): string[] {
  if (!value) return [];
  return [value, ...[...value.matchAll(/:([A-Za-z0-9+/=]{16,}):/g)].map((m) => m[1]!)];
}
