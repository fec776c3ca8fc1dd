import { describe, expect, it } from 'vitest';

import { createPublicApp } from '../../src/http/public-app.js';
import { randomPid, silentLogger, TicketHarness } from '../support/temp-service.js';

const BODY_LIMIT = 1_024;
const ADDRESS = '5'.repeat(95);

function publicApp(harness: TicketHarness, primaryAddress?: string) {
  return createPublicApp({
    metrics: harness.metrics,
    logger: silentLogger(),
    bodyLimitBytes: BODY_LIMIT,
    tickets: harness.tickets,
    info: () => ({
      network: 'stagenet',
      primaryAddress,
      minPaymentAtomic: 10_000_000_000n,
      minConfirmations: harness.minConfirmations,
    }),
  });
}

type App = ReturnType<typeof publicApp>;

function redeem(app: App, body: unknown, contentType = 'application/json') {
  return app.request('/api/v1/redeem', {
    method: 'POST',
    headers: contentType ? { 'content-type': contentType } : {},
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function answer(response: Response | Promise<Response>) {
  const res = await response;
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const errorShape = (code: string) => ({ error: { code, message: expect.any(String) } });

describe('POST /api/v1/redeem', () => {
  it('answers 200 success with the service token and the balance as a decimal string', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 9_007_199_254_740_993n);

    const { status, body } = await answer(redeem(publicApp(harness), { pid }));

    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'success',
      service_token: expect.stringMatching(/^[0-9a-f]{64}$/),
      balance_atomic: '9007199254740993',
    });
  });

  it('answers a second redeem with 200 already_claimed and the same token', async () => {
    const harness = new TicketHarness();
    const app = publicApp(harness);
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const first = await answer(redeem(app, { pid }));

    const second = await answer(redeem(app, { pid }));

    expect(second).toEqual({
      status: 200,
      body: { ...first.body, status: 'already_claimed' },
    });
  });

  it('answers 202 pending with the confirmations so far and the confirmations required', async () => {
    const harness = new TicketHarness({ minConfirmations: 10 });
    const pid = randomPid();
    harness.pay(pid, 7_000n, { confirmations: 4 });

    const { status, body } = await answer(redeem(publicApp(harness), { pid }));

    expect(status).toBe(202);
    expect(body).toEqual({ status: 'pending', confirmations: 4, required: 10 });
  });

  it('answers 400 invalid_pid for a malformed pid', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(redeem(publicApp(harness), { pid: 'xyz' }));

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_pid'));
  });

  it('answers 400 invalid_pid when the pid is missing', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(redeem(publicApp(harness), {}));

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_pid'));
  });

  it('answers 404 not_found for a pid with no payment', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(redeem(publicApp(harness), { pid: randomPid() }));

    expect(status).toBe(404);
    expect(body).toEqual(errorShape('not_found'));
  });

  it('answers 415 for a body that is not application/json', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(
      redeem(publicApp(harness), { pid: randomPid() }, 'text/plain'),
    );

    expect(status).toBe(415);
    expect(body).toEqual(errorShape('unsupported_media_type'));
  });

  it('answers 415 for a body without a content type', async () => {
    const harness = new TicketHarness();

    const { status } = await answer(redeem(publicApp(harness), { pid: randomPid() }, ''));

    expect(status).toBe(415);
  });

  it('accepts application/json with a charset parameter', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);

    const res = await redeem(publicApp(harness), { pid }, 'application/json; charset=utf-8');

    expect(res.status).toBe(200);
  });

  it('answers 400 invalid_json for a body that is not JSON', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(redeem(publicApp(harness), '{"pid": '));

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_json'));
  });

  it('answers 400 invalid_json for a JSON body that is not an object', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(redeem(publicApp(harness), [randomPid()]));

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_json'));
  });

  it('answers 400 invalid_json for a body nested deeper than 8 levels', async () => {
    const harness = new TicketHarness();
    const deep = JSON.parse(`${'{"a":'.repeat(10)}1${'}'.repeat(10)}`) as unknown;

    const { status, body } = await answer(redeem(publicApp(harness), deep));

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_json'));
  });

  it('answers 413 payload_too_large for a body over the limit', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);

    const big = { pid, padding: 'x'.repeat(BODY_LIMIT) };
    const { status, body } = await answer(redeem(publicApp(harness), big));

    expect(status).toBe(413);
    expect(body).toEqual(errorShape('payload_too_large'));
  });

  it('answers 413 when the declared content-length is over the limit', async () => {
    const harness = new TicketHarness();
    const text = JSON.stringify({ pid: randomPid(), padding: 'x'.repeat(BODY_LIMIT) });

    const res = await publicApp(harness).request('/api/v1/redeem', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(text.length) },
      body: text,
    });

    expect(res.status).toBe(413);
  });

  it('answers 500 internal without details when the database fails', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    harness.db.close();

    const { status, body } = await answer(redeem(publicApp(harness), { pid }));

    expect(status).toBe(500);
    expect(body).toEqual({ error: { code: 'internal', message: 'internal error' } });
  });
});

describe('GET /api/v1/token/:token', () => {
  it('answers 200 with status, balance_atomic, issued_at, revoked_at and abuse_score', async () => {
    const harness = new TicketHarness();
    const app = publicApp(harness);
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const { body: redeemed } = await answer(redeem(app, { pid }));

    const { status, body } = await answer(
      app.request(`/api/v1/token/${String(redeemed.service_token)}`),
    );

    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'active',
      balance_atomic: '7000',
      issued_at: harness.now,
      revoked_at: null,
      abuse_score: 0,
    });
  });

  it('answers 400 invalid_token for a malformed token', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(publicApp(harness).request('/api/v1/token/not-a-token'));

    expect(status).toBe(400);
    expect(body).toEqual(errorShape('invalid_token'));
  });

  it('answers 404 not_found for a token that was never issued', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(
      publicApp(harness).request(`/api/v1/token/${'ab'.repeat(32)}`),
    );

    expect(status).toBe(404);
    expect(body).toEqual(errorShape('not_found'));
  });
});

describe('GET /api/v1/info', () => {
  it('answers 503 unavailable while the wallet address is not known', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(publicApp(harness).request('/api/v1/info'));

    expect(status).toBe(503);
    expect(body).toEqual(errorShape('unavailable'));
  });

  it('answers 200 with the network, address and payment rules once the address is known', async () => {
    const harness = new TicketHarness({ minConfirmations: 10 });

    const { status, body } = await answer(publicApp(harness, ADDRESS).request('/api/v1/info'));

    expect(status).toBe(200);
    expect(body).toEqual({
      network: 'stagenet',
      primary_address: ADDRESS,
      min_payment_atomic: '10000000000',
      min_confirmations: 10,
      payment_id_bytes: 8,
    });
  });
});

describe('public app routing', () => {
  it('answers 404 not_found as JSON for an unknown route', async () => {
    const harness = new TicketHarness();

    const { status, body } = await answer(publicApp(harness).request('/api/v1/nothing'));

    expect(status).toBe(404);
    expect(body).toEqual(errorShape('not_found'));
  });
});
