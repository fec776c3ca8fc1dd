import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makeIntegratedAddress } from '../../src/monero/address.js';
import { type Regtest, startRegtest } from '../support/regtest.js';
import { type ChainService, eventually as eventuallyOn, startServiceOn } from '../support/regtest-service.js';

/*
 * The spine end to end: real monerod and two real wallet RPCs (a payer and
 * a watch-only receiver) on a private regtest chain, and a real service
 * with real listeners reading the receiver.
 */

const CONFIRMATIONS = 3;
const PAYMENT = 50_000_000_000n; // 0.05 XMR
const DUST = 1_000_000_000n; // 0.001 XMR, below the default floor of 0.01
const BACKLOG_BLOCKS = 150;

let chain: Regtest;
let running: ChainService;
let publicUrl: string;
let internalUrl: string;

beforeAll(async () => {
  chain = await startRegtest();
  running = await startServiceOn(chain, { min_confirmations: CONFIRMATIONS });
  publicUrl = running.api;
  internalUrl = running.internal;
}, 240_000);

afterAll(async () => {
  await running?.close();
  await chain?.close();
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

function eventually<T>(probe: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  return eventuallyOn(chain, probe, check);
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
    const { pid, txid } = await payPid(PAYMENT);
    await chain.mine(2);
    await eventually(() => redeem(pid), (r) => r.status === 202 && r.body.confirmations >= 1);

    // Pop every block down to and including the one holding the payment.
    const depth = (await chain.height()) - (await chain.txHeight(txid));
    await chain.reorg(depth, depth + 3);
    const gone = await eventually(() => redeem(pid), (r) => r.status === 404);
    expect(gone.body.error.code).toBe('not_found');
    expect(await metric('stronghold_payments_ingested_total{result="orphaned"}')).toMatch(/ [1-9]/);

    await chain.mine(CONFIRMATIONS + 1);
    const still = await eventually(() => redeem(pid), (r) => r.status === 404);
    expect(still.body.error.code).toBe('not_found');
  }, 180_000);

  it('misses nothing while the wallet RPC is down and reports not ready meanwhile', async () => {
    await chain.stopReceiverRpc();
    let paid: { pid: string };
    try {
      const ready = await eventually(
        () => fetch(`${internalUrl}/readyz`).then(async (r) => ({ status: r.status, body: await r.json() })),
        (r) => r.status === 503,
      );
      expect(ready.body.checks.wallet_rpc).toBe(false);
      // Pay while the receiver is down; the monitor must find it on return.
      paid = await payPid(PAYMENT);
      await chain.mine(CONFIRMATIONS + 1);
    } finally {
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

  it('credits a payment found in a backlog of more blocks than one range, read in ranges after an outage', async () => {
    await chain.stopReceiverRpc();
    let paid: { pid: string };
    try {
      paid = await payPid(PAYMENT);
      // More than the monitor's first range of 100 blocks: once the wallet
      // has them, the payment lies in a bounded range, read without the
      // pool, and the rest is read after it.
      await chain.mine(BACKLOG_BLOCKS);
    } finally {
      await chain.startReceiverRpc();
    }
    // Most often before the monitor's backoff ends; the credit must not depend on it.
    await chain.refresh('receiver');
    const top = await chain.height();

    const success = await eventually(() => redeem(paid.pid), (r) => r.status === 200);
    expect(success.body).toMatchObject({ status: 'success', balance_atomic: PAYMENT.toString() });
    const scanned = await eventually(
      () => metric('stronghold_monitor_scan_height'),
      (text) => Number(text.split(' ').at(-1)) >= top,
    );
    expect(Number(scanned.split(' ').at(-1))).toBeGreaterThanOrEqual(top);
  }, 240_000);
});
