import { describe, expect, it } from 'vitest';

import {
  type InvoicePayment,
  type InvoiceStatus,
  standingOf,
} from '../../src/invoices/invoice-status.js';

const CREATED = 1_800_000_000;
const EXPIRES = CREATED + 3_600;
const BEFORE = EXPIRES - 1;
const AMOUNT = 1_000_000_000_000n;

function invoice(status: InvoiceStatus, amount = AMOUNT) {
  return { status, amount, expires_at: EXPIRES };
}

function pending(amount: bigint, seenAt = CREATED + 10): InvoicePayment {
  return { state: 'pending', amount, first_seen_at: seenAt };
}

function confirmed(amount: bigint, seenAt = CREATED + 10): InvoicePayment {
  return { state: 'confirmed', amount, first_seen_at: seenAt };
}

function other(state: string, amount: bigint): InvoicePayment {
  return { state, amount, first_seen_at: CREATED + 10 };
}

describe('standingOf', () => {
  describe('a New invoice', () => {
    it('stays New with None before expiry and nothing paid', () => {
      expect(standingOf(invoice('New'), [], BEFORE)).toEqual({
        status: 'New',
        additional: 'None',
        received: 0n,
        confirmed: 0n,
      });
    });

    it('becomes Expired at exactly its expiry time with nothing paid', () => {
      expect(standingOf(invoice('New'), [], EXPIRES)).toMatchObject({
        status: 'Expired',
        additional: 'None',
      });
    });

    it('stays New with PaidPartial while a pending payment covers part of it', () => {
      const standing = standingOf(invoice('New'), [pending(400n)], BEFORE);
      expect(standing).toEqual({
        status: 'New',
        additional: 'PaidPartial',
        received: 400n,
        confirmed: 0n,
      });
    });

    it('adds partial payments together, pending and confirmed alike', () => {
      const payments = [confirmed(AMOUNT / 4n), pending(AMOUNT / 4n), pending(AMOUNT / 4n)];
      expect(standingOf(invoice('New'), payments, BEFORE)).toEqual({
        status: 'New',
        additional: 'PaidPartial',
        received: (AMOUNT / 4n) * 3n,
        confirmed: AMOUNT / 4n,
      });
    });

    it('becomes Processing when pending payments cover the amount exactly', () => {
      const payments = [pending(AMOUNT - 1n), pending(1n)];
      expect(standingOf(invoice('New'), payments, BEFORE)).toEqual({
        status: 'Processing',
        additional: 'None',
        received: AMOUNT,
        confirmed: 0n,
      });
    });

    it('stays Processing while only part of the covering funds is confirmed', () => {
      const payments = [confirmed(AMOUNT - 1n), pending(1n)];
      expect(standingOf(invoice('New'), payments, BEFORE)).toMatchObject({
        status: 'Processing',
        confirmed: AMOUNT - 1n,
      });
    });

    it('becomes Settled at once when confirmed funds cover it', () => {
      expect(standingOf(invoice('New'), [confirmed(AMOUNT)], BEFORE)).toEqual({
        status: 'Settled',
        additional: 'None',
        received: AMOUNT,
        confirmed: AMOUNT,
      });
    });

    it('becomes Processing with PaidOver when paid more than asked', () => {
      expect(standingOf(invoice('New'), [pending(AMOUNT + 1n)], BEFORE)).toMatchObject({
        status: 'Processing',
        additional: 'PaidOver',
        received: AMOUNT + 1n,
      });
    });

    it('becomes Expired with PaidPartial when the expiry passes after a partial payment', () => {
      expect(standingOf(invoice('New'), [pending(1n)], EXPIRES + 60)).toMatchObject({
        status: 'Expired',
        additional: 'PaidPartial',
      });
    });

    it('becomes Processing with PaidLate when the covering payment is seen at the expiry', () => {
      expect(standingOf(invoice('New'), [pending(AMOUNT, EXPIRES)], EXPIRES)).toMatchObject({
        status: 'Processing',
        additional: 'PaidLate',
      });
    });

    it('ignores dust, locked and orphaned payments', () => {
      const payments = [other('dust', AMOUNT), other('locked', AMOUNT), other('orphaned', AMOUNT)];
      expect(standingOf(invoice('New'), payments, BEFORE)).toEqual({
        status: 'New',
        additional: 'None',
        received: 0n,
        confirmed: 0n,
      });
    });

    it('falls back to New with None when its only payment is orphaned', () => {
      expect(standingOf(invoice('New'), [other('orphaned', 400n)], BEFORE)).toMatchObject({
        status: 'New',
        additional: 'None',
      });
    });
  });

  describe('a Processing invoice', () => {
    it('stays Processing while its funds are pending', () => {
      expect(standingOf(invoice('Processing'), [pending(AMOUNT)], BEFORE).status).toBe(
        'Processing',
      );
    });

    it('becomes Settled when its funds confirm, even after the expiry', () => {
      expect(standingOf(invoice('Processing'), [confirmed(AMOUNT)], EXPIRES + 86_400)).toEqual({
        status: 'Settled',
        additional: 'None',
        received: AMOUNT,
        confirmed: AMOUNT,
      });
    });

    it('becomes Invalid, not New, when a reorg removes the funds that covered it', () => {
      const payments = [other('orphaned', AMOUNT)];
      expect(standingOf(invoice('Processing'), payments, BEFORE)).toMatchObject({
        status: 'Invalid',
        additional: 'None',
        received: 0n,
      });
    });

    it('becomes Invalid when a reorg leaves only part of the amount', () => {
      const payments = [pending(AMOUNT / 2n), other('orphaned', AMOUNT / 2n)];
      expect(standingOf(invoice('Processing'), payments, BEFORE)).toMatchObject({
        status: 'Invalid',
        additional: 'PaidPartial',
        received: AMOUNT / 2n,
      });
    });

    it('stays Processing when the funds left after a reorg still cover it', () => {
      const payments = [pending(AMOUNT), other('orphaned', 5n)];
      expect(standingOf(invoice('Processing'), payments, BEFORE)).toMatchObject({
        status: 'Processing',
        additional: 'None',
      });
    });
  });

  describe('an Expired invoice', () => {
    it('stays Expired while nothing is paid', () => {
      expect(standingOf(invoice('Expired'), [], EXPIRES + 10).status).toBe('Expired');
    });

    it('stays Expired with PaidLate after a late partial payment', () => {
      expect(standingOf(invoice('Expired'), [pending(1n, EXPIRES + 5)], EXPIRES + 10)).toEqual({
        status: 'Expired',
        additional: 'PaidLate',
        received: 1n,
        confirmed: 0n,
      });
    });

    it('becomes Processing with PaidLate when a late payment covers it', () => {
      const payments = [pending(AMOUNT / 2n), pending(AMOUNT / 2n, EXPIRES + 5)];
      expect(standingOf(invoice('Expired'), payments, EXPIRES + 10)).toEqual({
        status: 'Processing',
        additional: 'PaidLate',
        received: AMOUNT,
        confirmed: 0n,
      });
    });

    it('becomes Settled with PaidLate when the late funds confirm', () => {
      const payments = [confirmed(AMOUNT, EXPIRES + 5)];
      expect(standingOf(invoice('Expired'), payments, EXPIRES + 99)).toMatchObject({
        status: 'Settled',
        additional: 'PaidLate',
      });
    });

    it('reports PaidOver rather than PaidLate when a late payment is too large', () => {
      const payments = [pending(AMOUNT * 2n, EXPIRES + 5)];
      expect(standingOf(invoice('Expired'), payments, EXPIRES + 10)).toMatchObject({
        status: 'Processing',
        additional: 'PaidOver',
      });
    });
  });

  describe('a final invoice', () => {
    it('keeps Settled when its payment is later orphaned', () => {
      const payments = [other('orphaned', AMOUNT)];
      expect(standingOf(invoice('Settled'), payments, BEFORE).status).toBe('Settled');
    });

    it('keeps Settled and reports PaidOver when more arrives', () => {
      const payments = [confirmed(AMOUNT), pending(7n)];
      expect(standingOf(invoice('Settled'), payments, BEFORE)).toMatchObject({
        status: 'Settled',
        additional: 'PaidOver',
        received: AMOUNT + 7n,
      });
    });

    it('keeps Invalid when paid in full afterwards, still counting the funds', () => {
      expect(standingOf(invoice('Invalid'), [confirmed(AMOUNT)], BEFORE)).toEqual({
        status: 'Invalid',
        additional: 'None',
        received: AMOUNT,
        confirmed: AMOUNT,
      });
    });

    it('keeps Invalid past the expiry rather than turning Expired', () => {
      expect(standingOf(invoice('Invalid'), [], EXPIRES + 10).status).toBe('Invalid');
    });
  });

  it('sums amounts beyond 2^53 exactly', () => {
    const big = 9_007_199_254_740_993n;
    const standing = standingOf(invoice('New', big * 2n), [pending(big), confirmed(big)], BEFORE);
    expect(standing).toMatchObject({ status: 'Processing', received: big * 2n, confirmed: big });
  });
});
