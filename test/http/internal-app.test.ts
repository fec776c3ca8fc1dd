import { describe, expect, it } from 'vitest';

import { createInternalApp } from '../../src/http/internal-app.js';
import type { Readiness } from '../../src/http/internal-app.js';
import { createPublicApp } from '../../src/http/public-app.js';
import { randomPid, silentLogger, TicketHarness } from '../support/temp-service.js';

const READY: Readiness = {
  ready: true,
  checks: { database: true, wallet_rpc: true, monitor_lag: true },
};

function apps(harness: TicketHarness, readiness: () => Readiness = () => READY) {
  const shared = { metrics: harness.metrics, logger: silentLogger(), bodyLimitBytes: 1_024 };
  return {
    internal: createInternalApp({ ...shared, tickets: harness.tickets, readiness }),
    public: createPublicApp({
      ...shared,
      tickets: harness.tickets,
      info: () => ({
        network: 'stagenet',
        primaryAddress: undefined,
        minPaymentAtomic: 1n,
        minConfirmations: harness.minConfirmations,
      }),
    }),
  };
}

type Apps = ReturnType<typeof apps>;

function post(app: Apps['internal'] | Apps['public'], path: string, body: unknown) {
  return app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function answer(response: Response | Promise<Response>) {
  const res = await response;
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A harness with one redeemed payment id and its token. */
async function withToken() {
  const harness = new TicketHarness();
  const app = apps(harness);
  const pid = randomPid();
  harness.pay(pid, 7_000n);
  const { body } = await answer(post(app.public, '/api/v1/redeem', { pid }));
  return { harness, app, token: body.service_token as string };
}

const errorShape = (code: string) => ({ error: { code, message: expect.any(String) } });

describe('POST /api/v1/token/:token/revoke', () => {
  it('answers 200 with the revoked status, which token introspection then reports', async () => {
    const { harness, app, token } = await withToken();

    const revoked = await answer(
      post(app.internal, `/api/v1/token/${token}/revoke`, { reason: 'spam', abuse_score: 7 }),
    );
    const status = await answer(app.public.request(`/api/v1/token/${token}`));

    const expected = {
      status: 'revoked',
      balance_atomic: '7000',
      issued_at: harness.now,
      revoked_at: harness.now,
      abuse_score: 7,
    };
    expect(revoked).toEqual({ status: 200, body: expected });
    expect(status).toEqual({ status: 200, body: expected });
  });

  it('revokes with score 0 when the body is an empty object', async () => {
    const { app, token } = await withToken();

    const { status, body } = await answer(post(app.internal, `/api/v1/token/${token}/revoke`, {}));

    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'revoked', abuse_score: 0 });
  });

  it.each([
    ['a negative abuse_score', -1],
    ['a fractional abuse_score', 1.5],
    ['an abuse_score given as a string', '3'],
    ['an abuse_score above 1000000', 1_000_001],
  ])('answers 400 for %s and leaves the token active', async (_, score) => {
    const { app, token } = await withToken();

    const { status, body } = await answer(
      post(app.internal, `/api/v1/token/${token}/revoke`, { abuse_score: score }),
    );
    const after = await answer(app.public.request(`/api/v1/token/${token}`));

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_request'));
    expect(after.body.status).toBe('active');
  });

  it('answers 400 for a reason that is not a string', async () => {
    const { app, token } = await withToken();

    const { status } = await answer(
      post(app.internal, `/api/v1/token/${token}/revoke`, { reason: 5 }),
    );

    expect(status).toBe(400);
  });

  it('answers 400 for a reason longer than 500 characters', async () => {
    const { app, token } = await withToken();

    const { status } = await answer(
      post(app.internal, `/api/v1/token/${token}/revoke`, { reason: 'x'.repeat(501) }),
    );

    expect(status).toBe(400);
  });

  it('answers 400 invalid_token for a malformed token', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(
      post(apps(harness).internal, '/api/v1/token/xyz/revoke', {}),
    );

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_token'));
  });

  it('answers 404 for a token that was never issued', async () => {
    const harness = new TicketHarness();

    const { status } = await answer(
      post(apps(harness).internal, `/api/v1/token/${'ab'.repeat(32)}/revoke`, {}),
    );

    expect(status).toBe(404);
  });
});

describe('GET /metrics', () => {
  it('exposes request and Bloom filter counters after a redeem of an unknown pid', async () => {
    const harness = new TicketHarness();
    const app = apps(harness);
    await post(app.public, '/api/v1/redeem', { pid: randomPid() });

    const res = await app.internal.request('/metrics');
    const text = await res.text();

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(text).toContain(
      'stronghold_http_requests_total{listener="public",route="/api/v1/redeem",status="404"} 1',
    );
    expect(text).toContain('stronghold_bloom_answers_total{answer="miss"} 1');
  });
});

describe('GET /healthz', () => {
  it('answers 200 ok', async () => {
    const harness = new TicketHarness();

    expect(await answer(apps(harness).internal.request('/healthz'))).toEqual({
      status: 200,
      body: { status: 'ok' },
    });
  });
});

describe('GET /readyz', () => {
  it('answers 503 not_ready with every check when the wallet is unreachable', async () => {
    const harness = new TicketHarness();
    const checks = { database: true, wallet_rpc: false, monitor_lag: false };
    const app = apps(harness, () => ({ ready: false, checks }));

    expect(await answer(app.internal.request('/readyz'))).toEqual({
      status: 503,
      body: { status: 'not_ready', checks },
    });
  });

  it('answers 200 ready when every check passes', async () => {
    const harness = new TicketHarness();

    expect(await answer(apps(harness).internal.request('/readyz'))).toEqual({
      status: 200,
      body: { status: 'ready', checks: READY.checks },
    });
  });
});
