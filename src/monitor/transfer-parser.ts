import { WalletRpcError } from '../errors.js';
import type { Transfer } from '../storage/payment-store.js';
import { type RawTransfer, transferList } from './wallet-rpc-client.js';

const MAX_AMOUNT = (1n << 63n) - 1n;
/** The wallet writes amounts and unlock times as unsigned 64-bit integers. */
const MAX_UNSIGNED = (1n << 64n) - 1n;
/** Digits of the largest unsigned 64-bit value, the longest amount the wallet writes. */
const MAX_DIGITS = 20;

/**
 * Reads a whole get_transfers answer: every transfer that carries a short
 * payment id, checked, with its tag. Throws a WalletRpcError when anything
 * in it is malformed.
 */
export function parseTransfersAnswer(
  answer: Buffer,
  maxHeight: number,
  pidTag: (pid: Buffer) => Buffer,
): Transfer[] {
  const transfers: Transfer[] = [];
  for (const entry of transferList(answer)) {
    const transfer = parseTransfer(entry, maxHeight, pidTag);
    if (transfer) transfers.push(transfer);
  }
  return transfers;
}

/**
 * Validates one incoming transfer from get_transfers. Returns undefined for
 * a transfer that carries no short payment id (nothing to credit it to);
 * throws for anything malformed, so a broken wallet answer is refused whole
 * and the cursor never moves past data that was not understood.
 *
 * The checks are written out by hand rather than as regular expressions:
 * a backlog scan runs them on every one of 100,000 transfers, and six
 * pattern tests per transfer were a third of its validation time.
 */
export function parseTransfer(
  raw: RawTransfer,
  maxHeight: number,
  pidTag: (pid: Buffer) => Buffer,
): Transfer | undefined {
  if (raw === null || typeof raw !== 'object') bad('a transfer that is not an object');

  const paymentId = shortPaymentId(raw.payment_id ?? '');
  if (paymentId === undefined) return undefined;

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

/**
 * The 16-hex-digit payment id, or undefined when there is none: empty, all
 * zeros, or a long (64-digit) id, which Stronghold never hands out.
 */
function shortPaymentId(value: unknown): string | undefined {
  if (typeof value !== 'string') bad('a non-string payment_id');
  const { length } = value;
  if (length === 0) return undefined;
  if (length === 64 && isLowerHex(value)) return undefined;
  if (length !== 16 || !isLowerHex(value)) bad('a malformed payment_id');
  return isZeros(value) ? undefined : value;
}

function parseTxid(value: unknown): string {
  if (typeof value !== 'string' || value.length !== 64 || !isLowerHex(value)) {
    bad('a malformed txid');
  }
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
  if (typeof value === 'string' && isDecimal(value)) {
    const parsed = BigInt(value);
    if (parsed <= MAX_UNSIGNED) return parsed;
  }
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

/** One to MAX_DIGITS ASCII digits, nothing else. */
function isDecimal(text: string): boolean {
  const { length } = text;
  if (length === 0 || length > MAX_DIGITS) return false;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Lowercase hex digits only, as the wallet writes ids and hashes. */
function isLowerHex(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function isZeros(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== 0x30) return false;
  return true;
}

function bad(what: string): never {
  throw new WalletRpcError('rpc_bad_answer', `wallet RPC get_transfers answered ${what}`);
}
