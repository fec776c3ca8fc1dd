import { generateKeyPairSync } from 'node:crypto';

import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createBaseApp } from '../../src/http/base-app.js';
import { requireSignature } from '../../src/http/signature-middleware.js';
import { createLogger } from '../../src/logger.js';
import { SignatureVerifier } from '../../src/merchants/signature-verifier.js';
import { Metrics } from '../../src/metrics.js';
import { WorkerPool } from '../../src/work/worker-pool.js';
import { signRequest } from '../support/sign-request.js';

const HOST = 'shopfront4kq.onion';
const KEY_ID = 'shop-key-2025';
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const RAW_PUBLIC_KEY = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');

let pool: WorkerPool;

beforeAll(() => {
  pool = new WorkerPool({ threads: 1 });
});

afterAll(async () => {
  await pool.close();
});

/** The public listener's base app with signed routes that echo what the handlers see. */
function signedApp(workers: Pick<WorkerPool, 'verifySignatures'> = pool): Hono {
  const verifier = new SignatureVerifier({
    pool: workers,
    windowSeconds: 300,
    lookupKey: (keyId) =>
      keyId === KEY_ID ? { merchantId: 'merchant-9', publicKey: RAW_PUBLIC_KEY } : undefined,
  });
  const app = createBaseApp({
    listener: 'public',
    metrics: new Metrics(),
    logger: createLogger('silent'),
    bodyLimitBytes: 64 * 1024,
  });
  app.use('/api/signed/*', requireSignature(verifier));
  app.post('/api/signed/json', async (c) =>
    c.json({ merchant: c.get('merchantId'), key: c.get('keyId'), body: await c.req.json() }),
  );
  app.post('/api/signed/text', async (c) => c.json({ text: await c.req.text() }));
  app.get('/api/signed/whoami', (c) => c.json({ merchant: c.get('merchantId') }));
  return app;
}

function signedRequest(
  app: Hono,
  method: string,
  path: string,
  body?: string,
  tamper: (headers: Record<string, string>) => void = () => {},
): Promise<Response> {
  const url = `http://${HOST}${path}`;
  const headers: Record<string, string> = { host: HOST, 'content-type': 'application/json' };
  Object.assign(headers, signRequest({ method, url, headers, body, privateKey, keyId: KEY_ID }));
  tamper(headers);
  return Promise.resolve(app.request(url, { method, headers, body }));
}

async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(typeof body.error.message).toBe('string');
  return body.error.code;
}

describe('requireSignature', () => {
  it('lets a signed request through with the merchant and key on the context', async () => {
    const app = signedApp();
    const res = await signedRequest(app, 'POST', '/api/signed/json?x=1', '{"amount":"1000"}');

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      merchant: 'merchant-9',
      key: KEY_ID,
      body: { amount: '1000' },
    });
  });

  it('leaves the body readable as text after checking its digest', async () => {
    const app = signedApp();
    const res = await signedRequest(app, 'POST', '/api/signed/text', 'plain words');

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ text: 'plain words' });
  });

  it('lets a signed GET without a body through', async () => {
    const res = await signedRequest(signedApp(), 'GET', '/api/signed/whoami');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ merchant: 'merchant-9' });
  });

  it('answers an unsigned request 401 signature_missing', async () => {
    const res = await signedApp().request(`http://${HOST}/api/signed/whoami`, {
      headers: { host: HOST },
    });
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('signature_missing');
  });

  it('answers a body that does not match its digest 401 digest_mismatch', async () => {
    const app = signedApp();
    const url = `http://${HOST}/api/signed/json`;
    const headers: Record<string, string> = { host: HOST, 'content-type': 'application/json' };
    const body = '{"amount":"1000"}';
    Object.assign(
      headers,
      signRequest({ method: 'POST', url, headers, body, privateKey, keyId: KEY_ID }),
    );

    const res = await app.request(url, { method: 'POST', headers, body: '{"amount":"9000"}' });

    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('digest_mismatch');
  });

  it('answers a request sent to another path 401 signature_invalid', async () => {
    const app = signedApp();
    const url = `http://${HOST}/api/signed/whoami`;
    const headers: Record<string, string> = { host: HOST };
    Object.assign(headers, signRequest({ method: 'GET', url, headers, privateKey, keyId: KEY_ID }));

    const res = await app.request(`${url}?as=other`, { headers });

    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('signature_invalid');
  });

  it('answers a replayed request 401 signature_replayed', async () => {
    const app = signedApp();
    const url = `http://${HOST}/api/signed/whoami`;
    const headers: Record<string, string> = { host: HOST };
    Object.assign(headers, signRequest({ method: 'GET', url, headers, privateKey, keyId: KEY_ID }));

    expect((await app.request(url, { headers })).status).toBe(200);
    const again = await app.request(url, { headers });

    expect(again.status).toBe(401);
    expect(await errorCode(again)).toBe('signature_replayed');
  });

  it('answers 503 overloaded when the verify queue is full', async () => {
    const tiny = new WorkerPool({ threads: 1, maxQueue: 1 });
    try {
      const app = signedApp(tiny);
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          signedRequest(app, 'GET', `/api/signed/whoami?n=${i}`),
        ),
      );
      const statuses = responses.map((r) => r.status);

      expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
      const refused = responses.filter((r) => r.status === 503);
      expect(refused.length).toBeGreaterThan(0);
      expect(await errorCode(refused[0] as Response)).toBe('overloaded');
    } finally {
      await tiny.close();
    }
  });

  it('does not run the handler for a refused request', async () => {
    const app = signedApp();
    let ran = false;
    app.post('/api/signed/effect', (c) => {
      ran = true;
      return c.json({});
    });

    const res = await signedRequest(app, 'POST', '/api/signed/effect', '{}', (headers) => {
      headers['signature'] = 'sig1=:AAAA:';
    });

    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('signature_malformed');
    expect(ran).toBe(false);
  });
});
