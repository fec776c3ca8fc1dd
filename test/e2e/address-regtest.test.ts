import { randomBytes } from 'node:crypto';

import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeAddress, makeIntegratedAddress } from '../../src/monero/address.js';
import { type Regtest, RpcError, startRegtest } from '../support/regtest.js';

interface IncomingTransfer {
  txid: string;
  amount: number;
  height: number;
  confirmations?: number;
  payment_id: string;
}

interface TransferLists {
  in?: IncomingTransfer[];
  pool?: IncomingTransfer[];
}

describe('integrated addresses against a regtest wallet', () => {
  let net: Regtest;

  beforeAll(async () => {
    net = await startRegtest();
  }, 240_000);

  afterAll(async () => {
    await net?.close();
  }, 30_000);

  async function incoming(): Promise<TransferLists> {
    return net.walletRpc<TransferLists>('receiver', 'get_transfers', { in: true, pool: true });
  }

  it('matches make_integrated_address for 200 random payment ids', async () => {
    const primary = decodeAddress(net.receiverAddress);

    for (let i = 0; i < 200; i++) {
      const pid = randomBytes(8);
      const ours = makeIntegratedAddress(net.receiverAddress, pid);
      const theirs = await net.walletRpc<{ integrated_address: string }>(
        'receiver',
        'make_integrated_address',
        { payment_id: pid.toString('hex') },
      );
      expect(ours).toBe(theirs.integrated_address);

      const decoded = decodeAddress(ours);
      expect(decoded.kind).toBe('integrated');
      expect(decoded.paymentId).toEqual(new Uint8Array(pid));
      expect(decoded.publicSpendKey).toEqual(primary.publicSpendKey);
      expect(decoded.publicViewKey).toEqual(primary.publicViewKey);
    }
  }, 60_000);

  it('keeps the receiver watch-only, unable to reveal a spend key', async () => {
    // -29 is wallet-rpc's "The wallet is watch-only" error.
    const spendKey = net.walletRpc('receiver', 'query_key', { key_type: 'spend_key' });
    await expect(spendKey).rejects.toBeInstanceOf(RpcError);
    await expect(spendKey).rejects.toMatchObject({ code: -29 });
    const { address } = await net.walletRpc('receiver', 'get_address', { account_index: 0 });
    expect(address).toBe(net.receiverAddress);
  }, 10_000);

  it('delivers a payment to a locally made integrated address with its payment id', async () => {
    const pid = randomBytes(8);
    const amount = 1_234_567_890n;
    const { txid } = await net.pay(makeIntegratedAddress(net.receiverAddress, pid), amount);

    const pooled = (await incoming()).pool?.find((t) => t.txid === txid);
    expect(pooled?.payment_id).toBe(pid.toString('hex'));

    await net.mine(1);
    await net.refresh('receiver');
    const mined = (await incoming()).in?.find((t) => t.txid === txid);
    expect(mined).toMatchObject({ payment_id: pid.toString('hex'), confirmations: 1 });
    expect(BigInt(mined?.amount ?? 0)).toBe(amount);
    expect(mined?.height).toBe((await net.height()) - 1);
  }, 120_000);

  it('loses a payment confirmed twice when a reorg replaces its block', async () => {
    const pid = randomBytes(8);
    const { txid } = await net.pay(makeIntegratedAddress(net.receiverAddress, pid), 2_000_000n);
    await net.mine(2);
    await net.refresh('receiver');
    const seen = (await incoming()).in?.find((t) => t.txid === txid);
    expect(seen?.confirmations).toBe(2);
    const before = await net.height();

    await net.reorg(3, 5);
    await net.refresh('receiver');

    expect(await net.height()).toBe(before + 2);
    const after = await incoming();
    expect([...(after.in ?? []), ...(after.pool ?? [])].map((t) => t.txid)).not.toContain(txid);
  }, 120_000);

  it('restarts the receiver RPC on the same port with the watch-only wallet open', async () => {
    const pid = randomBytes(8);
    await net.stopReceiverRpc();
    await expect(net.walletRpc('receiver', 'get_version')).rejects.toThrow();

    const { txid } = await net.pay(makeIntegratedAddress(net.receiverAddress, pid), 3_000_000n);
    await net.mine(1);
    await net.startReceiverRpc();

    const { address } = await net.walletRpc('receiver', 'get_address', { account_index: 0 });
    expect(address).toBe(net.receiverAddress);
    // The reopened wallet catches up on its own schedule; ask it to now.
    await net.refresh('receiver');
    const found = (await incoming()).in?.find((t) => t.txid === txid);
    expect(found?.payment_id).toBe(bytesToHex(pid));
  }, 120_000);
});
