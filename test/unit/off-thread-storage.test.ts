import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { WalletRpcError } from '../../src/errors.js';
import { pooledParser } from '../../src/monitor/pooled-parser.js';
import { parseTransfersAnswer } from '../../src/monitor/transfer-parser.js';
import { openDatabase } from '../../src/storage/database.js';
import { WalCheckpointer } from '../../src/storage/wal-checkpointer.js';
import { Secrets } from '../../src/tickets/secrets.js';
import { WorkerPool } from '../../src/work/worker-pool.js';
import { randomPid, randomTxid, silentLogger, tempDir, waitFor } from '../support/temp-service.js';

let pool: WorkerPool;

beforeAll(() => {
  pool = new WorkerPool({ threads: 1 });
});

afterAll(async () => {
  await pool.close();
});

function answer(transfers: Record<string, unknown>[]): Buffer {
  // Amounts as bare integers past 2^53, as the wallet writes them.
  const text = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { in: transfers } }).replace(
    /"amount":"(\d+)"/g,
    '"amount":$1',
  );
  return Buffer.from(text);
}

function incoming(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'in',
    txid: randomTxid(),
    amount: '9007199254740993',
    height: 500,
    payment_id: randomPid(),
    subaddr_index: { major: 0, minor: 2 },
    unlock_time: 0,
    double_spend_seen: false,
    ...fields,
  };
}

describe('pooledParser', () => {
  const secrets = new Secrets(randomBytes(32));

  it('reads an answer on a worker exactly as the main thread does, tags included', async () => {
    const body = answer([incoming(), incoming({ height: 0, type: 'pool' }), incoming({ payment_id: '' })]);

    const transfers = await pooledParser(pool, secrets.pidTagKey())(body, 1_000);

    const here = parseTransfersAnswer(body, 1_000, (pid) => secrets.pidTag(pid));
    expect(transfers).toEqual(here);
    expect(transfers).toHaveLength(2);
    expect(transfers[0]!.amount).toBe(9_007_199_254_740_993n);
  });

  it('rejects a malformed answer with the WalletRpcError and code the main thread would throw', async () => {
    const body = answer([incoming({ height: 2_000 })]);

    const err = await pooledParser(pool, secrets.pidTagKey())(body, 1_000).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(WalletRpcError);
    expect(err).toMatchObject({ code: 'rpc_bad_answer', message: expect.stringContaining('height') });
  });
});

/**
 * A writer that never checkpoints by itself, with `rows` rows of filler
 * committed, and a checkpointer on the pool (not started) at `thresholdBytes`.
 */
function walSetup(rows: number, thresholdBytes: number) {
  const file = join(tempDir(), 'stronghold.db');
  const db = openDatabase(file, { autoCheckpointPages: 0 });
  onTestFinished(() => {
    db.close();
  });
  db.exec('CREATE TABLE filler (k BLOB PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO filler VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(randomBytes(16), randomBytes(200));
  })();
  const checkpointer = new WalCheckpointer({
    file,
    checkpoint: (f) => pool.checkpointWal({ file: f }),
    thresholdBytes,
    intervalMs: 10,
    logger: silentLogger(),
  });
  // Registered last so that it runs first: the checkpointer stops before the database closes.
  onTestFinished(() => checkpointer.close());
  const pageBytes = db.pragma('page_size', { simple: true }) as number;
  /** What the database file would hold were every page in it. */
  const fullBytes = () => (db.pragma('page_count', { simple: true }) as number) * pageBytes;
  return { file, checkpointer, fullBytes };
}

describe('WalCheckpointer', () => {
  it('copies the WAL into the database file from a worker while the writer never checkpoints', async () => {
    const { file, checkpointer, fullBytes } = walSetup(5_000, 64 * 1024);
    // Nothing has reached the database file yet: every page is in the WAL.
    expect(statSync(file).size).toBeLessThan(fullBytes());

    checkpointer.start();
    await waitFor('a checkpoint', () => checkpointer.completed >= 1);

    expect(statSync(file).size).toBe(fullBytes());
  });

  it('leaves a WAL below its threshold alone', async () => {
    const { file, checkpointer, fullBytes } = walSetup(1, 64 * 1024 * 1024);

    checkpointer.start();
    await new Promise((resolve) => setTimeout(resolve, 150));

    expect(checkpointer.completed).toBe(0);
    expect(statSync(file).size).toBeLessThan(fullBytes());
  });
});
