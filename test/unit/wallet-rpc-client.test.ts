import { describe, expect, it, onTestFinished } from 'vitest';

import { WalletRpcError } from '../../src/errors.js';
import { WalletRpcClient } from '../../src/monitor/wallet-rpc-client.js';
import { FaultyWalletRpc } from '../support/faulty-wallet-rpc.js';
import { closedPortUrl } from '../support/temp-service.js';

const TXID = 'b2'.repeat(32);

async function startFake(): Promise<FaultyWalletRpc> {
  const fake = await FaultyWalletRpc.start();
  onTestFinished(() => fake.close());
  return fake;
}

async function rejection(call: Promise<unknown>): Promise<WalletRpcError> {
  const err = await call.then(
    () => {
      throw new Error('expected the call to reject');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WalletRpcError);
  return err as WalletRpcError;
}

describe('WalletRpcClient', () => {
  it('reads the wallet height', async () => {
    const fake = await startFake();
    fake.serve({ height: 3_141_592 });
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    expect(await client.getHeight()).toBe(3_141_592);
  });

  it('reads the primary address', async () => {
    const fake = await startFake();
    fake.serve({ height: 1, address: '4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx' });
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    expect(await client.getAddress()).toBe('4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx');
  });

  it('asks get_transfers for incoming and pool transfers in (min, max] and returns both lists', async () => {
    const fake = await startFake();
    fake.serve({
      height: 200,
      in: [{ txid: TXID, amount: 5n, height: 150 }],
      pool: [{ txid: TXID, amount: 6n, height: 0 }],
    });
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    const transfers = await client.incomingTransfers(120, 200);

    expect(fake.callsTo('get_transfers')[0]!.params).toEqual({
      in: true,
      pool: true,
      filter_by_height: true,
      min_height: 120,
      max_height: 200,
    });
    expect(transfers).toEqual([
      { type: 'in', txid: TXID, amount: '5', height: 150 },
      { type: 'pool', txid: TXID, amount: '6', height: 0 },
    ]);
  });

  it('returns amounts above 2^53 as exact decimal strings', async () => {
    const fake = await startFake();
    fake.serve({
      height: 200,
      in: [
        {
          txid: TXID,
          amount: 9_007_199_254_740_993n,
          height: 150,
          unlock_time: 18_446_744_073_709_551_615n,
        },
        { txid: TXID, amount: 18_446_744_073_709_551_615n, height: 151 },
      ],
    });
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    const transfers = await client.incomingTransfers(0, 200);

    expect(transfers.map((t) => t.amount)).toEqual(['9007199254740993', '18446744073709551615']);
    expect(transfers[0]!.unlock_time).toBe('18446744073709551615');
  });

  it('refuses an answer that is not JSON with rpc_bad_answer', async () => {
    const fake = await startFake();
    fake.fail('garbage');
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    expect((await rejection(client.getHeight())).code).toBe('rpc_bad_answer');
  });

  it('turns a JSON-RPC error into rpc_error carrying the wallet message', async () => {
    const fake = await startFake();
    fake.fail('rpc_error');
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    const err = await rejection(client.getHeight());

    expect(err.code).toBe('rpc_error');
    expect(err.message).toContain('No wallet file');
  });

  it('turns HTTP 500 into rpc_http_error', async () => {
    const fake = await startFake();
    fake.fail('http_500');
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    const err = await rejection(client.getHeight());

    expect(err.code).toBe('rpc_http_error');
    expect(err.message).toContain('500');
  });

  it('gives up on a wallet that never answers after timeoutMs with rpc_unreachable', async () => {
    const fake = await startFake();
    fake.fail('hang');
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 200 });

    const started = Date.now();
    const err = await rejection(client.getHeight());

    expect(err.code).toBe('rpc_unreachable');
    expect(fake.callsTo('get_height')).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports a port where nothing listens as rpc_unreachable', async () => {
    const client = new WalletRpcClient({ url: await closedPortUrl(), timeoutMs: 2_000 });

    const err = await rejection(client.getHeight());

    expect(err.code).toBe('rpc_unreachable');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('refuses an answer larger than maxResponseBytes with rpc_bad_answer', async () => {
    const fake = await startFake();
    fake.serve({ height: 200, in: [{ txid: TXID, amount: 5n, height: 150 }] });
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000, maxResponseBytes: 64 });

    const err = await rejection(client.incomingTransfers(0, 200));

    expect(err.code).toBe('rpc_bad_answer');
    expect(err.message).toContain('too large');
  });

  it.each([
    ['a negative height', -1],
    ['a fractional height', 1.5],
    ['a height above 10^9', 1_000_000_001],
  ])('refuses %s from get_height with rpc_bad_answer', async (_, height) => {
    const fake = await startFake();
    fake.serve({ height });
    const client = new WalletRpcClient({ url: fake.url, timeoutMs: 2_000 });

    expect((await rejection(client.getHeight())).code).toBe('rpc_bad_answer');
  });
});
