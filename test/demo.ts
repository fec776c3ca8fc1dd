/**
 * `npm run demo`: a throwaway regtest chain, the service on top of it, and
 * one anonymous payment walked through to a service token, step by step.
 */
import { randomBytes } from 'node:crypto';

import { makeIntegratedAddress } from '../src/monero/address.js';
import { startRegtest } from './support/regtest.js';
import { startServiceOn } from './support/regtest-service.js';

const CONFIRMATIONS = 3;
const AMOUNT = 100_000_000_000n; // 0.1 XMR

function step(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

async function main(): Promise<void> {
  step('starting monerod (regtest) and two wallet RPCs: a payer and a watch-only receiver');
  const chain = await startRegtest();
  const running = await startServiceOn(chain, {
    min_confirmations: CONFIRMATIONS,
    poll_interval_ms: 250,
    log_level: 'warn',
  });
  const api = running.api;
  try {
    step(`service listening at ${api}`);
    const info = await waitFor(async () => {
      const r = await fetch(`${api}/api/v1/info`);
      return r.ok ? ((await r.json()) as { primary_address: string }) : undefined;
    });
    process.stdout.write(`primary address: ${info.primary_address}\n`);

    const pid = randomBytes(8).toString('hex');
    const address = makeIntegratedAddress(info.primary_address, Buffer.from(pid, 'hex'));
    step(`customer picks payment id ${pid} and pays 0.1 XMR to\n${address}`);
    const { txid } = await chain.pay(address, AMOUNT);
    process.stdout.write(`txid ${txid}\n`);

    const redeem = async () => {
      await chain.refresh('receiver');
      const r = await fetch(`${api}/api/v1/redeem`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pid }),
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    step('redeem before any confirmation');
    const pending = await waitFor(async () => {
      const r = await redeem();
      return r.status === 202 ? r : undefined;
    });
    process.stdout.write(`${JSON.stringify(pending)}\n`);

    step(`mining ${CONFIRMATIONS} blocks`);
    await chain.mine(CONFIRMATIONS);
    const success = await waitFor(async () => {
      const r = await redeem();
      return r.status === 200 ? r : undefined;
    });
    step('redeem after confirmation');
    process.stdout.write(`${JSON.stringify(success)}\n`);

    step('introspect the token');
    const token = success.body.service_token as string;
    const status = await fetch(`${api}/api/v1/token/${token}`);
    process.stdout.write(`${JSON.stringify(await status.json())}\n`);

    step('redeem again: the same token, already claimed');
    process.stdout.write(`${JSON.stringify(await redeem())}\n`);
  } finally {
    await running.close();
    await chain.close();
  }
  step('done');
}

async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting for the chain');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
