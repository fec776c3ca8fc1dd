import { WalletRpcError } from '../errors.js';
import type { Transfer } from '../storage/payment-store.js';
import type { RawTransfer } from './wallet-rpc-client.js';

const MAX_AMOUNT = (1n << 63n) - 1n;
const NO_PAYMENT_ID = /^0{16}$|^0{64}$|^$/;

/**
 * Validates one incoming transfer from get_transfers. Returns undefined for
 * a transfer that carries no short payment id (nothing to credit it to);
 * throws for anything malformed, so a broken wallet answer is refused whole
 * and the cursor never moves past data that was not understood.
 */
export function parseTransfer(
  raw: RawTransfer,
  maxHeight: number,
  pidTag: (pid: Buffer) => Buffer,
): Transfer | undefined {
  if (raw === null || typeof raw !== 'object') bad('a transfer that is not an object');

  const paymentId = raw.payment_id ?? '';
  if (typeof paymentId !== 'string') bad('a non-string payment_id');
  if (NO_PAYMENT_ID.test(paymentId) || /^[0-9a-f]{64}$/.test(paymentId)) return undefined;
  if (!/^[0-9a-f]{16}$/.test(paymentId)) bad('a malformed payment_id');

  return {
    txid: parseTxid(raw.txid),
    ...parseSubaddress(raw.subaddr_index),
    pidTag: pidTag(Buffer.from(paymentId, 'hex')),
    amount: parseAmount(raw.amount),
    height: parseHeight(raw, maxHeight),
    unlockTime: parseUnsigned(raw.unlock_time ?? '0', 'unlock_time'),
    doubleSpendSeen: raw.double_spend_seen === true,
  };
}

function parseTxid(value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) bad('a malformed txid');
  return value;
}

function parseSubaddress(value: unknown): { major: number; minor: number } {
  if (value === null || typeof value !== 'object') bad('no subaddr_index');
  const { major, minor } = value as { major?: unknown; minor?: unknown };
  if (!isIndex(major) || !isIndex(minor)) bad('a malformed subaddr_index');
  return { major, minor };
}

function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff;
}

function parseAmount(value: unknown): bigint {
  const amount = parseUnsigned(value, 'amount');
  if (amount <= 0n || amount > MAX_AMOUNT) bad('an amount out of range');
  return amount;
}

function parseUnsigned(value: unknown, field: string): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) return BigInt(value);
  bad(`a malformed ${field}`);
}

function parseHeight(raw: RawTransfer, maxHeight: number): number {
  if (raw.type === 'pool') return 0;
  const height = raw.height;
  if (!Number.isSafeInteger(height) || (height as number) < 1 || (height as number) > maxHeight) {
    bad('a height outside the chain');
  }
  return height as number;
}

function bad(what: string): never {
  throw new WalletRpcError('rpc_bad_answer', `wallet RPC get_transfers answered ${what}`);
}
