import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { openDatabase } from '../../src/storage/database.js';
import { type ClaimRequest, TicketStore } from '../../src/storage/ticket-store.js';
import { ClaimQueue, type ClaimWriter } from '../../src/tickets/claim-queue.js';
import { tempDir } from '../support/temp-service.js';

const NOW = 1_700_000_000;

function openStore() {
  const db = openDatabase(join(tempDir(), 'stronghold.db'));
  onTestFinished(() => {
    db.close();
  });
  const store = new TicketStore(db);
  const calls: number[] = [];
  const writer: ClaimWriter = {
    claimAll(requests) {
      calls.push(requests.length);
      return store.claimAll(requests);
    },
  };
  const tickets = () => db.prepare('SELECT count(*) FROM tickets').pluck().get() as number;
  return { store, writer, calls, tickets };
}

function request(pidTag = randomBytes(16)): ClaimRequest {
  return { pidTag, tokenHash: randomBytes(32), now: NOW };
}

describe('ClaimQueue', () => {
  it('commits the claims of one turn of the event loop in one transaction', async () => {
    const { writer, calls, tickets } = openStore();
    const queue = new ClaimQueue(writer);

    const answers = await Promise.all(Array.from({ length: 40 }, () => queue.claim(request())));

    expect(answers).toEqual(Array(40).fill(true));
    expect(calls).toEqual([40]);
    expect(tickets()).toBe(40);
  });

  it('answers true to exactly one of many claims of one tag in the same batch', async () => {
    const { writer, tickets } = openStore();
    const queue = new ClaimQueue(writer);
    const tag = randomBytes(16);

    const answers = await Promise.all(Array.from({ length: 500 }, () => queue.claim(request(tag))));

    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(answers[0]).toBe(true);
    expect(tickets()).toBe(1);
  });

  it('answers false to a claim of a tag claimed in an earlier batch', async () => {
    const { writer } = openStore();
    const queue = new ClaimQueue(writer);
    const tag = randomBytes(16);

    expect(await queue.claim(request(tag))).toBe(true);
    expect(await queue.claim(request(tag))).toBe(false);
  });

  it('splits a turn with more claims than maxBatch into several transactions', async () => {
    const { writer, calls } = openStore();
    const queue = new ClaimQueue(writer, 16);

    await Promise.all(Array.from({ length: 40 }, () => queue.claim(request())));

    expect(calls).toEqual([16, 16, 8]);
  });

  it('rejects every claim of a batch whose transaction failed, and commits later ones', async () => {
    const { store, tickets } = openStore();
    let fail = true;
    // A disk that fails once: the real store cannot be made to on demand.
    const failingOnce: ClaimWriter = {
      claimAll(requests) {
        if (fail) {
          fail = false;
          throw new Error('disk I/O error');
        }
        return store.claimAll(requests);
      },
    };
    const queue = new ClaimQueue(failingOnce);

    const failed = await Promise.allSettled([queue.claim(request()), queue.claim(request())]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(tickets()).toBe(0);

    expect(await queue.claim(request())).toBe(true);
    expect(tickets()).toBe(1);
  });

  it('refuses a maxBatch that is not a positive integer', () => {
    const { writer } = openStore();
    expect(() => new ClaimQueue(writer, 0)).toThrow(RangeError);
    expect(() => new ClaimQueue(writer, 1.5)).toThrow(RangeError);
  });
});
