import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { WalletRpcError } from '../../src/errors.js';
import { parseTransfer } from '../../src/monitor/transfer-parser.js';
import { quoteAmounts } from '../../src/monitor/wallet-rpc-client.js';

const WALLET_HEIGHT = 1_000;
const TXID = 'a1'.repeat(32);
const PID = '0123456789abcdef';

/** A keyed tag stand-in: any deterministic function of the pid will do here. */
const pidTag = (pid: Buffer) => createHash('sha256').update(pid).digest().subarray(0, 16);

function raw(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'in',
    txid: TXID,
    amount: '5000000000000',
    height: 900,
    payment_id: PID,
    subaddr_index: { major: 0, minor: 3 },
    unlock_time: '0',
    double_spend_seen: false,
    ...fields,
  };
}

function parse(fields: Record<string, unknown>) {
  return parseTransfer(raw(fields), WALLET_HEIGHT, pidTag);
}

function rejection(fields: Record<string, unknown>): WalletRpcError {
  try {
    parse(fields);
  } catch (err) {
    expect(err).toBeInstanceOf(WalletRpcError);
    return err as WalletRpcError;
  }
  throw new Error('expected parseTransfer to throw');
}

describe('quoteAmounts', () => {
  it('lets amounts above 2^53 survive JSON.parse exactly', () => {
    const text = '{"amount": 18446744073709551615, "fee":9007199254740993, "unlock_time" : 0}';

    expect(JSON.parse(quoteAmounts(text))).toEqual({
      amount: '18446744073709551615',
      fee: '9007199254740993',
      unlock_time: '0',
    });
  });

  it('quotes every number in an amounts list', () => {
    const text = '{"amounts": [9007199254740993, 1], "amount": 2}';

    expect(JSON.parse(quoteAmounts(text))).toEqual({
      amounts: ['9007199254740993', '1'],
      amount: '2',
    });
  });

  it('quotes fractional and negative amounts so that they stay recognisably malformed', () => {
    const text = '{"amount": -1.5e3}';

    expect(JSON.parse(quoteAmounts(text))).toEqual({ amount: '-1.5e3' });
  });

  it('leaves other numeric fields as numbers', () => {
    const text = '{"height": 12, "amount": 3, "confirmations": 4}';

    expect(JSON.parse(quoteAmounts(text))).toEqual({ height: 12, amount: '3', confirmations: 4 });
  });

  it('leaves a money field whose value is not a number as it was', () => {
    const text = '{"amount": "7", "fee": null, "amounts": 3, "unlock_time": [1]}';

    expect(quoteAmounts(text)).toBe(text);
  });

  it('quotes the numbers of an amounts list up to its closing bracket only', () => {
    const text = '{"amounts": [-1, 2.5e-3 ,3], "height": 4, "amount": 5}';

    expect(JSON.parse(quoteAmounts(text))).toEqual({
      amounts: ['-1', '2.5e-3', '3'],
      height: 4,
      amount: '5',
    });
  });

  it('leaves text inside a string value alone, even when it looks like an amount field', () => {
    const text = '{"note": "\\"amount\\": 5", "amount": 6}';

    expect(JSON.parse(quoteAmounts(text))).toEqual({ note: '"amount": 5', amount: '6' });
  });
});

describe('parseTransfer', () => {
  it('turns a valid incoming transfer into a Transfer', () => {
    expect(parse({ double_spend_seen: true })).toEqual({
      txid: TXID,
      major: 0,
      minor: 3,
      pidTag: pidTag(Buffer.from(PID, 'hex')),
      amount: 5_000_000_000_000n,
      height: 900,
      unlockTime: 0n,
      doubleSpendSeen: true,
    });
  });

  it('reads an amount above 2^53 exactly', () => {
    const text = quoteAmounts('{"amount": 9007199254740993}');

    const transfer = parse(JSON.parse(text) as Record<string, unknown>);

    expect(transfer?.amount).toBe(9_007_199_254_740_993n);
  });

  it('accepts the largest amount SQLite can store (2^63 - 1)', () => {
    expect(parse({ amount: '9223372036854775807' })?.amount).toBe(9_223_372_036_854_775_807n);
  });

  it('accepts an amount that arrives as a safe JSON integer', () => {
    expect(parse({ amount: 42 })?.amount).toBe(42n);
  });

  it('reads a transfer still in the pool as height 0', () => {
    expect(parse({ type: 'pool', height: 0 })?.height).toBe(0);
  });

  it('reads a pool transfer as height 0 whatever height it carries', () => {
    expect(parse({ type: 'pool', height: 999 })?.height).toBe(0);
  });

  it('accepts a transfer at the wallet height', () => {
    expect(parse({ height: WALLET_HEIGHT })?.height).toBe(WALLET_HEIGHT);
  });

  it('reads a nonzero unlock_time', () => {
    expect(parse({ unlock_time: '1700000000' })?.unlockTime).toBe(1_700_000_000n);
  });

  it('reads the largest unlock_time the wallet can write, 2^64 - 1', () => {
    expect(parse({ unlock_time: '18446744073709551615' })?.unlockTime).toBe((1n << 64n) - 1n);
  });

  it.each([
    ['a payment id of 16 zeros', { payment_id: '0000000000000000' }],
    ['a payment id of 64 zeros', { payment_id: '0'.repeat(64) }],
    ['an empty payment id', { payment_id: '' }],
    ['no payment id', { payment_id: undefined }],
    ['a long (64 hex) payment id', { payment_id: 'ab'.repeat(32) }],
  ])('returns undefined for %s', (_, fields) => {
    expect(parse(fields)).toBeUndefined();
  });

  // One row per malformed field: each must refuse the whole answer.
  it.each([
    ['a txid of 63 hex digits', { txid: 'a'.repeat(63) }],
    ['an upper-case txid', { txid: 'A1'.repeat(32) }],
    ['a non-hex txid', { txid: 'z'.repeat(64) }],
    ['a missing txid', { txid: undefined }],
    ['a numeric txid', { txid: 12345 }],
    ['a negative amount', { amount: '-5' }],
    ['a zero amount', { amount: '0' }],
    ['a zero numeric amount', { amount: 0 }],
    ['an amount of 2^63', { amount: '9223372036854775808' }],
    ['an amount of 21 digits', { amount: '123456789012345678901' }],
    ['a fractional amount string', { amount: '1.5' }],
    ['a fractional numeric amount', { amount: 1.5 }],
    ['an unsafe numeric amount', { amount: 2 ** 53 + 2 }],
    ['an amount with garbage', { amount: '12abc' }],
    ['an amount in exponent notation', { amount: '1e12' }],
    ['a missing amount', { amount: undefined }],
    ['a height above the wallet height', { height: WALLET_HEIGHT + 1 }],
    ['a height of 0 outside the pool', { height: 0 }],
    ['a fractional height', { height: 900.5 }],
    ['a height given as a string', { height: '900' }],
    ['a missing height', { height: undefined }],
    ['a missing subaddr_index', { subaddr_index: undefined }],
    ['a subaddr_index with a negative major', { subaddr_index: { major: -1, minor: 0 } }],
    ['a subaddr_index with a string minor', { subaddr_index: { major: 0, minor: '1' } }],
    ['a subaddr_index above 2^32 - 1', { subaddr_index: { major: 0, minor: 2 ** 32 } }],
    ['a payment id of 15 hex digits', { payment_id: '0123456789abcde' }],
    ['a payment id of 17 hex digits', { payment_id: '0123456789abcdef0' }],
    ['an upper-case payment id', { payment_id: '0123456789ABCDEF' }],
    ['a non-hex payment id', { payment_id: '0123456789abcdeg' }],
    ['a numeric payment id', { payment_id: 1234 }],
    ['a malformed unlock_time', { unlock_time: 'soon' }],
    ['an unlock_time of 2^64', { unlock_time: '18446744073709551616' }],
  ])('refuses %s with WalletRpcError rpc_bad_answer', (_, fields) => {
    expect(rejection(fields).code).toBe('rpc_bad_answer');
  });

  it('refuses a transfer that is not an object', () => {
    expect(() => parseTransfer(null as never, WALLET_HEIGHT, pidTag)).toThrow(WalletRpcError);
  });
});
