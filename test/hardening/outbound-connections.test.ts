import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it, onTestFinished } from 'vitest';

import { ServiceProcess, type Settings } from '../support/crash-harness.js';
import { FaultyWalletRpc } from '../support/faulty-wallet-rpc.js';
import { RECORDED_ADDRESS } from '../support/recorded-wallet-rpc.js';
import { TorStandInSocks5Server } from '../support/socks5-server.js';
import { randomPid, randomTxid, tempDir } from '../support/temp-service.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { addMerchant, signedFetch } from './merchant-service.js';

/*
 * What `stronghold serve` connects to, observed from inside the process: a
 * preload wraps net.Socket.prototype.connect and dns.lookup and logs every
 * destination. After a flow that polls the wallet, answers customers and
 * merchants and delivers a webhook, the destinations must be the wallet
 * RPC and the proxy (or, without a proxy, the merchant's webhook endpoint)
 * and nothing else; and no name is ever looked up.
 */

const PRELOAD = fileURLToPath(new URL('./fixtures/record-connections.mjs', import.meta.url));
const WEBHOOK_SECRET = 'outbound-webhook-secret-0001';
const ONION = 'merchantshopxyz.onion';

type Recorded =
  | { kind: 'connect'; host?: string; port?: number; path?: string }
  | { kind: 'lookup'; hostname: string };

async function runFlow(options: { proxy: boolean }) {
  const wallet = await FaultyWalletRpc.start();
  onTestFinished(() => wallet.close());
  const receiver = await WebhookReceiver.start(WEBHOOK_SECRET);
  onTestFinished(() => receiver.stop());
  const proxy = options.proxy ? await TorStandInSocks5Server.start() : undefined;
  if (proxy) {
    proxy.route(ONION, receiver.port);
    onTestFinished(() => proxy.close());
  }
  const pid = randomPid();
  wallet.serve({
    height: 200,
    address: RECORDED_ADDRESS,
    in: [
      {
        txid: randomTxid(),
        amount: 5_000_000_000_000n,
        height: 150,
        payment_id: pid,
        subaddr_index: { major: 0, minor: 0 },
      },
    ],
  });

  const log = join(tempDir(), 'connections.jsonl');
  const settings: Settings = {
    data_dir: join(tempDir(), 'data'),
    public_listen: '127.0.0.1:0',
    internal_listen: '127.0.0.1:0',
    wallet_rpc_url: wallet.url,
    primary_address: RECORDED_ADDRESS,
    poll_interval_ms: 100,
    workers: 1,
    bloom_expected_items: 1_000,
    ...(proxy ? { outbound_proxy: proxy.url, tor_only: true } : {}),
  };
  const service = await ServiceProcess.start({
    settings,
    nodeArgs: ['--import', PRELOAD],
    env: { HARDENING_CONNECT_LOG: log },
  });
  onTestFinished(() => service.kill('SIGKILL'));

  // Customers, merchants and the operator, as they would use it.
  const webhookUrl = proxy
    ? `http://${ONION}:${receiver.port}/hooks/stronghold`
    : receiver.url('/hooks/stronghold');
  const merchant = await addMerchant(service.internalUrl, {
    webhookUrl,
    webhookSecret: WEBHOOK_SECRET,
  });
  const created = await signedFetch(service.publicUrl, merchant, 'POST', '/api/v1/invoices', {
    body: JSON.stringify({ amount_atomic: '1000000000000', order_id: 'order-1' }),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect((await fetch(`${service.publicUrl}/pay/${id}`)).status).toBe(200);
  await waitForRedeem(service.publicUrl, pid);
  await receiver.waitForAccepted(1, 30_000);

  service.kill('SIGTERM');
  expect((await service.waitForExit(15_000)).code).toBe(0);
  const recorded = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Recorded);
  return { recorded, wallet, receiver, proxy };
}

async function waitForRedeem(url: string, pid: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const response = await fetch(`${url}/api/v1/redeem`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pid }),
    });
    if (response.status === 200) return;
    if (Date.now() > deadline) throw new Error(`redeem still answers ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Lookups of names; binding a listener to an IP literal passes through dns.lookup too. */
function nameLookups(recorded: Recorded[]): string[] {
  return recorded.flatMap((r) =>
    r.kind === 'lookup' && isIP(r.hostname) === 0 ? [r.hostname] : [],
  );
}

function destinations(recorded: Recorded[]): Set<string> {
  return new Set(
    recorded
      .filter((r): r is Extract<Recorded, { kind: 'connect' }> => r.kind === 'connect')
      .map((r) => (r.path !== undefined ? `unix:${r.path}` : `${r.host}:${r.port}`)),
  );
}

describe('outbound connections of stronghold serve', () => {
  it('connects only to the wallet RPC and the SOCKS proxy, and looks up no name, with outbound_proxy set', async () => {
    const { recorded, wallet, receiver, proxy } = await runFlow({ proxy: true });
    const walletAt = `127.0.0.1:${new URL(wallet.url).port}`;
    const proxyAt = `127.0.0.1:${proxy!.port}`;

    expect(destinations(recorded)).toEqual(new Set([walletAt, proxyAt]));
    expect(nameLookups(recorded)).toEqual([]);
    // The webhook went to the onion name through the proxy, never directly.
    expect(proxy!.requests).toContainEqual({
      host: ONION,
      port: receiver.port,
      addressType: 'domain',
    });
    expect(receiver.connections.every((c) => proxy!.upstreamPorts.includes(c.remotePort))).toBe(
      true,
    );
  }, 120_000);

  it('connects only to the wallet RPC and the webhook endpoint without a proxy', async () => {
    const { recorded, wallet, receiver } = await runFlow({ proxy: false });
    const walletAt = `127.0.0.1:${new URL(wallet.url).port}`;
    const receiverAt = `127.0.0.1:${receiver.port}`;

    expect(destinations(recorded)).toEqual(new Set([walletAt, receiverAt]));
    expect(nameLookups(recorded)).toEqual([]);
  }, 120_000);
});
