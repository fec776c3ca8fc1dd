import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { OutboundHttpError, parseProxyUrl, postJson } from '../../src/webhooks/outbound-http.js';
import { TorStandInSocks5Server } from '../support/socks5-server.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'outbound-test-secret';
const BODY = JSON.stringify({ deliveryId: 'wd_test', type: 'InvoiceCreated', invoiceId: 'inv_1' });
const DIRECT = { torOnly: false, timeoutMs: 2_000 };

function signed(body: string): Record<string, string> {
  return { 'BTCPay-Sig': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` };
}

async function failureOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutboundHttpError);
  return (err as OutboundHttpError).code;
}

/** A throwaway self-signed certificate, which no default trust store accepts. */
function selfSignedCertificate(name: string): { key: string; cert: string } {
  const pem = execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-days', '1',
      '-keyout', '-', '-out', '-'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const key = /-----BEGIN PRIVATE KEY-----[^]*?-----END PRIVATE KEY-----/.exec(pem)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!key || !cert) throw new Error('openssl produced no key and certificate');
  return { key, cert };
}

/** A port with nothing listening on it: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('postJson', () => {
  let receiver: WebhookReceiver;
  let proxy: TorStandInSocks5Server;
  const extraServers: http.Server[] = [];

  beforeEach(async () => {
    receiver = await WebhookReceiver.start(SECRET);
    proxy = await TorStandInSocks5Server.start();
  });

  afterEach(async () => {
    await receiver.stop();
    await proxy.close();
    for (const server of extraServers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  async function extraServer(handler: http.RequestListener): Promise<number> {
    const server = http.createServer(handler).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    extraServers.push(server);
    return (server.address() as AddressInfo).port;
  }

  it('posts the body with its headers directly and resolves with the status', async () => {
    const result = await postJson(receiver.url('/hook?x=1'), BODY, signed(BODY), DIRECT);

    expect(result).toEqual({ status: 200 });
    const [received] = receiver.accepted;
    expect(received?.raw).toBe(BODY);
    expect(received?.headers['content-type']).toBe('application/json');
    expect(received?.headers.host).toBe(`127.0.0.1:${receiver.port}`);
    expect(receiver.requests[0]?.path).toBe('/hook?x=1');
  });

  it('returns a redirect as a status and does not follow it', async () => {
    let hits = 0;
    const port = await extraServer((_req, res) => {
      hits++;
      res.writeHead(302, { location: receiver.url() }).end();
    });

    const result = await postJson(`http://127.0.0.1:${port}/`, BODY, signed(BODY), DIRECT);

    expect(result.status).toBe(302);
    expect(hits).toBe(1);
    expect(receiver.requests).toHaveLength(0);
  });

  it('stops reading a response body past the bound and still answers the status', async () => {
    const port = await extraServer((req, res) => {
      req.resume();
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const pump = () => {
        while (res.write(chunk));
      };
      res.on('drain', pump);
      pump();
    });

    const started = Date.now();
    const result = await postJson(`http://127.0.0.1:${port}/`, BODY, signed(BODY), {
      ...DIRECT,
      timeoutMs: 10_000,
      maxResponseBytes: 256 * 1024,
    });

    expect(result.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('times out as a whole when the server never answers', async () => {
    receiver.hang();

    const started = Date.now();
    const code = await failureOf(
      postJson(receiver.url(), BODY, signed(BODY), { torOnly: false, timeoutMs: 300 }),
    );

    expect(code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports connect_failed when nothing listens', async () => {
    const port = await closedPort();
    const code = await failureOf(postJson(`http://127.0.0.1:${port}/`, BODY, {}, DIRECT));
    expect(code).toBe('connect_failed');
  });

  it('reports invalid_url for a scheme other than http or https', async () => {
    const code = await failureOf(postJson('ftp://example.invalid/', BODY, {}, DIRECT));
    expect(code).toBe('invalid_url');
  });

  it('rejects headers it sets itself', async () => {
    await expect(
      postJson(receiver.url(), BODY, { 'content-length': '1' }, DIRECT),
    ).rejects.toThrow(TypeError);
  });

  it('reaches a .onion URL through the proxy, which resolves the name', async () => {
    proxy.route('merchantxyz.onion', receiver.port);

    const result = await postJson('http://merchantxyz.onion/hook', BODY, signed(BODY), {
      proxy: proxy.url,
      torOnly: true,
      timeoutMs: 2_000,
    });

    expect(result.status).toBe(200);
    expect(proxy.requests).toEqual([
      { host: 'merchantxyz.onion', port: 80, addressType: 'domain' },
    ]);
    expect(receiver.accepted.map((w) => w.raw)).toEqual([BODY]);
    expect(receiver.accepted[0]?.headers.host).toBe('merchantxyz.onion');
  });

  it('passes a clearnet name to the proxy too, with socks5:// as with socks5h://', async () => {
    proxy.route('merchant.example', receiver.port);

    const result = await postJson('http://merchant.example:8080/', BODY, signed(BODY), {
      proxy: proxy.url.replace('socks5h:', 'socks5:'),
      torOnly: false,
      timeoutMs: 2_000,
    });

    expect(result.status).toBe(200);
    expect(proxy.requests).toEqual([
      { host: 'merchant.example', port: 8080, addressType: 'domain' },
    ]);
  });

  it('with torOnly and no proxy refuses before opening any connection', async () => {
    const code = await failureOf(
      postJson(receiver.url(), BODY, signed(BODY), { torOnly: true, timeoutMs: 2_000 }),
    );

    expect(code).toBe('direct_connection_refused');
    // Give a stray connection time to land before checking there was none.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.connections).toHaveLength(0);
    expect(receiver.requests).toHaveLength(0);
  });

  it('with torOnly and a proxy sends a clearnet URL through the proxy only', async () => {
    const result = await postJson(receiver.url(), BODY, signed(BODY), {
      proxy: proxy.url,
      torOnly: true,
      timeoutMs: 2_000,
    });

    expect(result.status).toBe(200);
    expect(proxy.requests).toEqual([
      { host: '127.0.0.1', port: receiver.port, addressType: 'ipv4' },
    ]);
    expect(receiver.connections).toHaveLength(1);
    expect(receiver.connections.map((c) => c.remotePort)).toEqual(proxy.upstreamPorts);
  });

  it('reports proxy_failed when the proxy cannot reach the name', async () => {
    const code = await failureOf(
      postJson('http://unknownmerchant.onion/', BODY, {}, { ...DIRECT, proxy: proxy.url }),
    );
    expect(code).toBe('proxy_failed');
  });

  it('reports proxy_failed when nothing listens on the proxy port', async () => {
    const port = await closedPort();
    const code = await failureOf(
      postJson(receiver.url(), BODY, {}, { ...DIRECT, proxy: `socks5h://127.0.0.1:${port}` }),
    );
    expect(code).toBe('proxy_failed');
    expect(receiver.connections).toHaveLength(0);
  });

  it('speaks TLS over the proxy and refuses a certificate it cannot verify', async () => {
    const handshakes: string[] = [];
    const server = tls.createServer(selfSignedCertificate('merchanttls.onion'), (socket) =>
      socket.end(),
    );
    server.on('tlsClientError', () => handshakes.push('refused by client'));
    server.on('secureConnection', () => handshakes.push('completed'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    proxy.route('merchanttls.onion', (server.address() as AddressInfo).port);

    try {
      const code = await failureOf(
        postJson('https://merchanttls.onion/', BODY, {}, { ...DIRECT, proxy: proxy.url }),
      );

      expect(code).toBe('tls_failed');
      expect(proxy.requests).toEqual([
        { host: 'merchanttls.onion', port: 443, addressType: 'domain' },
      ]);
      await vi.waitFor(() => expect(handshakes).toEqual(['refused by client']));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('ends with aborted when the caller aborts', async () => {
    receiver.hang();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);

    const code = await failureOf(
      postJson(receiver.url(), BODY, signed(BODY), { ...DIRECT, signal: controller.signal }),
    );

    expect(code).toBe('aborted');
  });
});

describe('parseProxyUrl', () => {
  it('reads host and port of a socks5h URL', () => {
    expect(parseProxyUrl('socks5h://127.0.0.1:9050')).toEqual({ host: '127.0.0.1', port: 9050 });
  });

  it('rejects a URL that is not socks5 or socks5h', () => {
    expect(() => parseProxyUrl('http://127.0.0.1:9050')).toThrow(TypeError);
  });

  it('rejects a URL without a port', () => {
    expect(() => parseProxyUrl('socks5h://127.0.0.1')).toThrow(TypeError);
  });
});
