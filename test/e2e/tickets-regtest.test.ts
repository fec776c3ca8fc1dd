import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { makeIntegratedAddress } from '../../src/monero/address.js';
import { Service } from '../../src/service.js';
import { type Regtest, startRegtest } from '../support/regtest.js';

/*
 * The spine end to end: real monerod and two real wallet RPCs (a payer and
 * a watch-only receiver) on a private regtest chain, and a real service
 * with real listeners reading the receiver.
 */

const CONFIRMATIONS = 3;
const PAYMENT = 50_000_000_000n; // 0.05 XMR
const DUST = 1_000_000_000n; // 0.001 XMR, below the default floor of 0.01

let chain: Regtest;
let service: Service;
let dir: string;
let publicUrl: string;
let internalUrl: string;

beforeAll(async () => {
  chain = await startRegtest();
  dir = mkdtempSync(join(tmpdir(), 'stronghold-e2e-'));
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: join(dir, 'data'),
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      wallet_rpc_url: chain.receiverRpcUrl,
      min_confirmations: CONFIRMATIONS,
      poll_interval_ms: 100,
      max_backoff_ms: 500,
      log_level: 'silent',
    },
  });
  service = await Service.start(config, createLogger('silent'));
  publicUrl = `http://${service.publicListener.url}`;
  internalUrl = `http://${service.internalListener.url}`;
}, 240_000);

afterAll(async () => {
  await service?.close();
  await chain?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function redeem(pid: string) {
  const response = await fetch(`${publicUrl}/api/v1/redeem`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pid }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function tokenStatus(token: string) {
  const response = await fetch(`${publicUrl}/api/v1/token/${token}`);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** Refreshes the receiver and polls until `check` passes or time runs out. */
async function eventually<T>(probe: () => Promise<T>, check: (value: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    await chain.refresh('receiver').catch(() => undefined);
    const value = await probe();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function payPid(amount: bigint): Promise<{ pid: string; txid: string }> {
  const pid = randomBytes(8).toString('hex');
  const address = makeIntegratedAddress(chain.receiverAddress, Buffer.from(pid, 'hex'));
  const { txid } = await chain.pay(address, amount);
  return { pid, txid };
}

async function metric(name: string): Promise<string> {
  const text = await (await fetch(`${internalUrl}/metrics`)).text();
  return text.split('\n').filter((line) => line.startsWith(name)).join('\n');
}

describe('anonymous tickets on a regtest chain', () => {
  it('publishes the wallet address so clients can build integrated addresses', async () => {
    const info = await eventually(
      () => fetch(`${publicUrl}/api/v1/info`).then(async (r) => ({ status: r.status, body: await r.json() })),
      (r) => r.status === 200,
    );
    expect(info.body).toMatchObject({
      primary_address: chain.receiverAddress,
      min_payment_atomic: '10000000000',
      min_confirmations: CONFIRMATIONS,
    });
  });

  it('walks a payment from pending to a token, then revocation and repeat redeems', async () => {
    const { pid } = await payPid(PAYMENT);

    const pending = await eventually(() => redeem(pid), (r) => r.status === 202);
    expect(pending.body).toMatchObject({ status: 'pending', confirmations: 0, required: CONFIRMATIONS });

    await chain.mine(1);
    const deeper = await eventually(() => redeem(pid), (r) => r.body.confirmations === 1);
    expect(deeper.status).toBe(202);

    await chain.mine(CONFIRMATIONS);
    const success = await eventually(() => redeem(pid), (r) => r.status === 200);
    expect(success.body).toMatchObject({ status: 'success', balance_atomic: PAYMENT.toString() });
    const token = success.body.service_token as string;
    expect(token).toMatch(/^[0-9a-f]{64}$/);

    const active = await tokenStatus(token);
    expect(active.body).toMatchObject({ status: 'active', balance_atomic: PAYMENT.toString(), revoked_at: null });

    const revoke = await fetch(`${internalUrl}/api/v1/token/${token}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'abuse', abuse_score: 7 }),
    });
    expect(revoke.status).toBe(200);
    const revoked = await tokenStatus(token);
    expect(revoked.body).toMatchObject({ status: 'revoked', abuse_score: 7 });
    expect(typeof revoked.body.revoked_at).toBe('number');

    const again = await redeem(pid);
    expect(again.body).toMatchObject({ status: 'already_claimed', service_token: token });
  }, 180_000);

  it('credits every payment to one payment id, including those after the redeem', async () => {
    const { pid } = await payPid(PAYMENT);
    await chain.mine(CONFIRMATIONS + 1);
    const first = await eventually(() => redeem(pid), (r) => r.status === 200);
    expect(first.body.status).toBe('success');

    const address = makeIntegratedAddress(chain.receiverAddress, Buffer.from(pid, 'hex'));
    await chain.pay(address, PAYMENT);
    await chain.mine(CONFIRMATIONS + 1);
    const doubled = (PAYMENT * 2n).toString();
    const after = await eventually(() => redeem(pid), (r) => r.body.balance_atomic === doubled);
    expect(after.body).toMatchObject({ status: 'already_claimed', service_token: first.body.service_token });
    const status = await tokenStatus(first.body.service_token);
    expect(status.body.balance_atomic).toBe(doubled);
  }, 180_000);

  it('records dust as ignored and never lets it redeem', async () => {
    const before = await metric('stronghold_payments_ingested_total{result="dust"}');
    const { pid } = await payPid(DUST);
    await chain.mine(CONFIRMATIONS + 1);
    await eventually(() => metric('stronghold_payments_ingested_total{result="dust"}'), (m) => m !== before);
    const answer = await redeem(pid);
    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('not_found');
  }, 180_000);

  it('stops counting a payment that a real reorg removed', async () => {
    const { pid } = await payPid(PAYMENT);
    await chain.mine(2);
    await eventually(() => redeem(pid), (r) => r.status === 202 && r.body.confirmations === 2);

    await chain.reorg(3, 5);
    const gone = await eventually(() => redeem(pid), (r) => r.status === 404);
    expect(gone.body.error.code).toBe('not_found');
    expect(await metric('stronghold_payments_ingested_total{result="orphaned"}')).toMatch(/ [1-9]/);

    await chain.mine(CONFIRMATIONS + 1);
    const still = await eventually(() => redeem(pid), (r) => r.status === 404);
    expect(still.body.error.code).toBe('not_found');
  }, 180_000);

  it('misses nothing while the wallet RPC is down and reports not ready meanwhile', async () => {
    await chain.stopReceiverRpc();
    try {
      const ready = await eventually(
        () => fetch(`${internalUrl}/readyz`).then(async (r) => ({ status: r.status, body: await r.json() })),
        (r) => r.status === 503,
      );
      expect(ready.body.checks.wallet_rpc).toBe(false);
    } finally {
      // Pay while the receiver is down; the monitor must find it on return.
      var paid = await payPid(PAYMENT);
      await chain.mine(CONFIRMATIONS + 1);
      await chain.startReceiverRpc();
    }

    const success = await eventually(() => redeem(paid.pid), (r) => r.status === 200);
    expect(success.body).toMatchObject({ status: 'success', balance_atomic: PAYMENT.toString() });
    const ready = await eventually(
      () => fetch(`${internalUrl}/readyz`).then((r) => r.status),
      (s) => s === 200,
    );
    expect(ready).toBe(200);
  }, 180_000);
});
