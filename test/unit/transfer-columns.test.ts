import { describe, expect, it } from 'vitest';

import { fromColumns, toColumns } from '../../src/monitor/transfer-columns.js';
import { makeTransfer } from '../support/temp-service.js';

const transfer = makeTransfer;

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
