import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { openDatabase } from '../../src/storage/database.js';
import { type BatchWriter, GroupCommit, ItemFailure } from '../../src/storage/group-commit.js';
import { type ClaimRequest, TicketStore } from '../../src/storage/ticket-store.js';
import { tempDir } from '../support/temp-service.js';

const NOW = 1_700_000_000;

function openStore() {
  const db = openDatabase(join(tempDir(), 'stronghold.db'));
  onTestFinished(() => {
    db.close();
  });
  const store = new TicketStore(db);
  const batches: number[] = [];
  const claimAll: BatchWriter<ClaimRequest, boolean> = (requests) => {
    batches.push(requests.length);
    return store.claimAll(requests);
  };
  const tickets = () => db.prepare('SELECT count(*) FROM tickets').pluck().get() as number;
  return { store, claimAll, batches, tickets };
}

function request(pidTag = randomBytes(16)): ClaimRequest {
  return { pidTag, tokenHash: randomBytes(32), now: NOW };
}

describe('GroupCommit', () => {
  it('commits the writes of one turn of the event loop in one batch', async () => {
    const { claimAll, batches, tickets } = openStore();
    const claims = new GroupCommit(claimAll);

    const answers = await Promise.all(Array.from({ length: 40 }, () => claims.submit(request())));

    expect(answers).toEqual(Array(40).fill(true));
    expect(batches).toEqual([40]);
    expect(tickets()).toBe(40);
  });

  it('lets the unique key pick exactly one of many claims of one tag in the same batch', async () => {
    const { claimAll, tickets } = openStore();
    const claims = new GroupCommit(claimAll);
    const tag = randomBytes(16);

    const answers = await Promise.all(Array.from({ length: 500 }, () => claims.submit(request(tag))));

    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(answers[0]).toBe(true);
    expect(tickets()).toBe(1);
  });

  it('answers false to a claim of a tag claimed in an earlier batch', async () => {
    const { claimAll } = openStore();
    const claims = new GroupCommit(claimAll);
    const tag = randomBytes(16);

    expect(await claims.submit(request(tag))).toBe(true);
    expect(await claims.submit(request(tag))).toBe(false);
  });

  it('splits a turn with more writes than maxBatch into several batches', async () => {
    const { claimAll, batches } = openStore();
    const claims = new GroupCommit(claimAll, 16);

    await Promise.all(Array.from({ length: 40 }, () => claims.submit(request())));

    expect(batches).toEqual([16, 16, 8]);
  });

  it('rejects every write of a batch that failed, and commits later ones', async () => {
    const { store, tickets } = openStore();
    let fail = true;
    // A disk that fails once: the real store cannot be made to on demand.
    const failingOnce: BatchWriter<ClaimRequest, boolean> = (requests) => {
      if (fail) {
        fail = false;
        throw new Error('disk I/O error');
      }
      return store.claimAll(requests);
    };
    const claims = new GroupCommit(failingOnce);

    const failed = await Promise.allSettled([claims.submit(request()), claims.submit(request())]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(tickets()).toBe(0);

    expect(await claims.submit(request())).toBe(true);
    expect(tickets()).toBe(1);
  });

  it('rejects only the item a batch answered with an ItemFailure', async () => {
    const refused = new Error('refused');
    const claims = new GroupCommit<number, number>((items) =>
      items.map((n) => (n === 2 ? new ItemFailure(refused) : n * 10)),
    );

    const answers = await Promise.allSettled([1, 2, 3].map((n) => claims.submit(n)));

    expect(answers).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: refused },
      { status: 'fulfilled', value: 30 },
    ]);
  });

  it('commits one batch per turn of the event loop across all group commits, in order of asking', async () => {
    // A counter that moves once per turn: each step waits for the next check phase.
    let turn = 0;
    const counting = (async () => {
      for (let i = 0; i < 6; i++) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        turn++;
      }
    })();
    const log: { batch: string; turn: number }[] = [];
    const writer = (name: string) => (items: readonly number[]) => {
      log.push({ batch: `${name}:${items.join(',')}`, turn });
      return [...items];
    };
    const first = new GroupCommit(writer('first'), 2);
    const second = new GroupCommit(writer('second'));

    const answers = await Promise.all([
      ...[1, 2, 3].map((n) => first.submit(n)),
      ...[7, 8].map((n) => second.submit(n)),
    ]);
    await counting;

    expect(answers).toEqual([1, 2, 3, 7, 8]);
    expect(log.map((entry) => entry.batch)).toEqual(['first:1,2', 'second:7,8', 'first:3']);
    // Never two commits between the same two reads of the sockets.
    expect(new Set(log.map((entry) => entry.turn)).size).toBe(3);
  });

  it('refuses a maxBatch that is not a positive integer', () => {
    const write = (items: readonly number[]) => [...items];
    expect(() => new GroupCommit(write, 0)).toThrow(RangeError);
    expect(() => new GroupCommit(write, 1.5)).toThrow(RangeError);
  });
});
