import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { fromColumns, toColumns } from '../../src/monitor/transfer-columns.js';
import type { Transfer } from '../../src/storage/payment-store.js';
import { randomTxid } from '../support/temp-service.js';

function transfer(fields: Partial<Transfer> = {}): Transfer {
  return {
    txid: randomTxid(),
    major: 0,
    minor: 7,
    pidTag: randomBytes(16),
    amount: 5_000n,
    height: 1_234,
    unlockTime: 0n,
    doubleSpendSeen: false,
    ...fields,
  };
}

describe('transfer columns', () => {
  it('give back every field of every transfer, the extremes included', () => {
    const transfers = [
      transfer(),
      transfer({ height: 0, doubleSpendSeen: true }),
      transfer({
        major: 2 ** 32 - 1,
        minor: 2 ** 32 - 1,
        amount: (1n << 63n) - 1n,
        unlockTime: (1n << 64n) - 1n,
        height: 1e9,
      }),
    ];

    const back = fromColumns(structuredClone(toColumns(transfers)));

    expect(back).toEqual(transfers);
    expect(back.every((t) => Buffer.isBuffer(t.pidTag))).toBe(true);
  });

  it('carry nothing for no transfers', () => {
    expect(fromColumns(toColumns([]))).toEqual([]);
  });

  it('refuse a transfer whose txid or tag has the wrong length', () => {
    expect(() => toColumns([transfer({ txid: 'ab' })])).toThrow(RangeError);
    expect(() => toColumns([transfer({ pidTag: Buffer.alloc(15) })])).toThrow(RangeError);
  });
});
