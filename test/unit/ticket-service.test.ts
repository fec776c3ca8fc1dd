import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { InvalidInputError, NotFoundError } from '../../src/errors.js';
import { TicketService } from '../../src/tickets/ticket-service.js';
import { randomPid, TicketHarness } from '../support/temp-service.js';

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

async function bloomAnswers(harness: TicketHarness, answer: string): Promise<number> {
  const metric = await harness.metrics.bloom.get();
  return metric.values.find((v) => v.labels.answer === answer)?.value ?? 0;
}

describe('TicketService.redeem', () => {
  it.each([
    ['a string of 15 hex digits', '0123456789abcde'],
    ['a string of 17 hex digits', '0123456789abcdef0'],
    ['a string with a non-hex digit', '0123456789abcdeg'],
    ['a 64-digit long payment id', 'ab'.repeat(32)],
    ['a number', 1234567890123456],
    ['a missing pid', undefined],
  ])('refuses %s with InvalidInputError invalid_pid', (_, pid) => {
    const harness = new TicketHarness();

    const err = thrown(() => harness.tickets.redeem(pid));

    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).code).toBe('invalid_pid');
  });

  it('answers an unknown pid with NotFoundError from the Bloom filter, without the database', async () => {
    const harness = new TicketHarness();
    harness.pay(randomPid(), 5_000n);
    harness.db.close();

    const err = thrown(() => harness.tickets.redeem(randomPid()));

    expect(err).toBeInstanceOf(NotFoundError);
    expect(await bloomAnswers(harness, 'miss')).toBe(1);
  });

  it('answers a pid with only unconfirmed funds as pending with its confirmations', async () => {
    const harness = new TicketHarness({ minConfirmations: 10 });
    const pid = randomPid();
    harness.pay(pid, 5_000n, { confirmations: 3 });

    expect(await harness.tickets.redeem(pid)).toEqual({
      status: 'pending',
      confirmations: 3,
      required: 10,
    });
  });

  it('reports the pending payment closest to confirmation', async () => {
    const harness = new TicketHarness({ minConfirmations: 10 });
    const pid = randomPid();
    harness.pay(pid, 5_000n, { confirmations: 2 });
    harness.pay(pid, 5_000n, { confirmations: 1 });

    expect(await harness.tickets.redeem(pid)).toEqual({
      status: 'pending',
      confirmations: 4,
      required: 10,
    });
  });

  it('accepts the pid in upper-case hex', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 5_000n);

    expect(await harness.tickets.redeem(pid.toUpperCase())).toMatchObject({ status: 'success' });
  });

  it('answers a pid with confirmed funds with success, a 64-hex token and the balance', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);

    const result = await harness.tickets.redeem(pid);

    expect(result).toEqual({
      status: 'success',
      token: expect.stringMatching(/^[0-9a-f]{64}$/),
      balance: 7_000n,
    });
  });

  it('answers a second redeem with already_claimed and the same token', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const first = await harness.tickets.redeem(pid);

    const second = await harness.tickets.redeem(pid);

    expect(first.status).toBe('success');
    expect(second).toEqual({ ...first, status: 'already_claimed' });
  });

  it('keeps out of its cache a balance that a scan changed while the claim waited to commit', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);

    const claiming = harness.tickets.redeem(pid);
    harness.pay(pid, 5_000n);

    expect(await claiming).toMatchObject({ status: 'success', balance: 7_000n });
    expect(await harness.tickets.redeem(pid)).toMatchObject({
      status: 'already_claimed',
      balance: 12_000n,
    });
  });

  it('answers already_claimed after a restart, when no cache remembers the claim', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const first = await harness.tickets.redeem(pid);
    const restarted = new TicketService({
      payments: harness.payments,
      tickets: harness.ticketStore,
      secrets: harness.secrets,
      bloom: harness.bloom,
      cacheMaxEntries: 100,
      walletHeight: () => harness.height,
    });

    expect(await restarted.redeem(pid)).toEqual({ ...first, status: 'already_claimed' });
  });

  it('answers NotFoundError for a pid that was paid only dust', () => {
    const harness = new TicketHarness({ dustFloor: 1_000n });
    const pid = randomPid();
    harness.pay(pid, 999n);

    expect(thrown(() => harness.tickets.redeem(pid))).toBeInstanceOf(NotFoundError);
  });

  it('includes a payment confirmed after the claim in the balance redeem and status() report', async () => {
    const harness = new TicketHarness({ minConfirmations: 10 });
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const { token } = (await harness.tickets.redeem(pid)) as { token: string };
    expect(harness.tickets.status(token).balance).toBe(7_000n);

    harness.pay(pid, 3_000n, { confirmations: 2 });
    expect(harness.tickets.status(token).balance).toBe(7_000n);
    harness.mine(8);

    expect(await harness.tickets.redeem(pid)).toEqual({
      status: 'already_claimed',
      token,
      balance: 10_000n,
    });
    expect(harness.tickets.status(token).balance).toBe(10_000n);
  });

  it('derives a different token for the same pid under a different secret', async () => {
    const pid = randomPid();
    const one = new TicketHarness({ secret: randomBytes(32) });
    const two = new TicketHarness({ secret: randomBytes(32) });
    one.pay(pid, 7_000n);
    two.pay(pid, 7_000n);

    const a = (await one.tickets.redeem(pid)) as { token: string };
    const b = (await two.tickets.redeem(pid)) as { token: string };

    expect(a.token).not.toBe(b.token);
  });

  it('derives the same token for the same pid under the same secret', async () => {
    const pid = randomPid();
    const secret = randomBytes(32);
    const one = new TicketHarness({ secret });
    const two = new TicketHarness({ secret });
    one.pay(pid, 7_000n);
    two.pay(pid, 7_000n);

    const a = (await one.tickets.redeem(pid)) as { token: string };
    const b = (await two.tickets.redeem(pid)) as { token: string };

    expect(a.token).toBe(b.token);
  });

  it('stores only the SHA-256 of the token and never the pid or token bytes', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const { token } = (await harness.tickets.redeem(pid)) as { token: string };

    const rows = harness.db.prepare('SELECT pid_tag, token_hash FROM tickets').all() as {
      pid_tag: Buffer;
      token_hash: Buffer;
    }[];
    expect(rows).toEqual([
      {
        pid_tag: harness.secrets.pidTag(Buffer.from(pid, 'hex')),
        token_hash: createHash('sha256').update(token).digest(),
      },
    ]);

    harness.db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = Buffer.concat([
      readFileSync(harness.dbFile),
      readFileSync(`${harness.dbFile}-wal`),
    ]);
    for (const secret of [
      Buffer.from(pid, 'hex'),
      Buffer.from(pid),
      Buffer.from(pid.toUpperCase()),
      Buffer.from(token),
      // The first half is the stored tag; the second is the token's secret
      // part, 128 bits that a stolen database must not shorten.
      Buffer.from(token, 'hex').subarray(16),
    ]) {
      expect(bytes.includes(secret)).toBe(false);
    }
    expect(bytes.includes(createHash('sha256').update(token).digest())).toBe(true);
  });
});

describe('TicketService.status', () => {
  it('reports an issued token as active with its issue time and no abuse', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const { token } = (await harness.tickets.redeem(pid)) as { token: string };

    expect(harness.tickets.status(token)).toEqual({
      status: 'active',
      balance: 7_000n,
      issuedAt: harness.now,
      revokedAt: null,
      abuseScore: 0,
    });
  });

  it('refuses a token that is not 64 lowercase hex digits with invalid_token', () => {
    const harness = new TicketHarness();

    const err = thrown(() => harness.tickets.status('AB'.repeat(32)));

    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).code).toBe('invalid_token');
  });

  it('answers NotFoundError for a well-formed token that was never issued', () => {
    const harness = new TicketHarness();

    expect(thrown(() => harness.tickets.status('ab'.repeat(32)))).toBeInstanceOf(NotFoundError);
  });

  it('answers NotFoundError, and revokes nothing, for an issued token whose secret half is changed', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const { token } = (await harness.tickets.redeem(pid)) as { token: string };
    // The same tag, so the lookup finds the ticket; the hash must refuse it.
    const last = token.at(-1) === '0' ? '1' : '0';
    const forged = token.slice(0, -1) + last;

    expect(thrown(() => harness.tickets.status(forged))).toBeInstanceOf(NotFoundError);
    expect(thrown(() => harness.tickets.revoke(forged, 'spam', 1))).toBeInstanceOf(NotFoundError);
    expect(harness.tickets.status(token).status).toBe('active');
  });
});

describe('TicketService.revoke', () => {
  it('marks the token revoked with the time and abuse score, as status() then reports', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const { token } = (await harness.tickets.redeem(pid)) as { token: string };
    expect(harness.tickets.status(token).status).toBe('active');

    harness.now += 60;
    const revoked = harness.tickets.revoke(token, 'spam', 42);

    const expected = { status: 'revoked', revokedAt: harness.now, abuseScore: 42 };
    expect(revoked).toMatchObject(expected);
    expect(harness.tickets.status(token)).toMatchObject(expected);
  });

  it('keeps the first revocation time when a token is revoked again', async () => {
    const harness = new TicketHarness();
    const pid = randomPid();
    harness.pay(pid, 7_000n);
    const { token } = (await harness.tickets.redeem(pid)) as { token: string };
    const firstAt = harness.now;
    harness.tickets.revoke(token, 'spam', 1);

    harness.now += 60;
    const again = harness.tickets.revoke(token, 'more spam', 5);

    expect(again).toMatchObject({ revokedAt: firstAt, abuseScore: 5 });
  });

  it('answers NotFoundError for a token that was never issued', () => {
    const harness = new TicketHarness();

    expect(thrown(() => harness.tickets.revoke('cd'.repeat(32), 'spam', 1))).toBeInstanceOf(
      NotFoundError,
    );
  });
});
