import { createHash } from 'node:crypto';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { DATABASE_FILE } from '../../src/service.js';
import { loadSecret, type Secrets } from '../../src/tickets/secrets.js';
import { readDatabase, ServiceProcess, type Settings } from '../support/crash-harness.js';
import {
  makeRecording,
  RecordedWalletRpc,
  type RecordedTransfer,
  seededRandom,
} from '../support/recorded-wallet-rpc.js';
import { tempDir } from '../support/temp-service.js';

/*
 * Crash safety of the compiled service: SIGKILL at random moments while
 * the monitor ingests a recording of thousands of transfers and clients
 * redeem, then a restart, then the invariants read from the SQLite file
 * itself. The seed fixes the recording and the kill times; set
 * HARDENING_SEED to try others.
 */

const SEED = Number(process.env.HARDENING_SEED ?? 7_919);
const CYCLES = 20;
const CLIENTS = 8;
const MIN_CONFIRMATIONS = 2;
const DUST_FLOOR = 1_000_000_000n;
const BLOCKS = 1_500;
const START_HEIGHT = 20;
const LONGEST_RUN_MS = 1_500;
const NO_PAYMENT_ID = '0000000000000000';

const recording = makeRecording({
  seed: SEED,
  blocks: BLOCKS,
  customers: 300,
  dustFloor: DUST_FLOOR,
});

type Answer = { pid: string; status: string; token: string; cycle: number };

describe('crash safety of stronghold serve', () => {
  it(`keeps every payment once and every answered claim through ${CYCLES} SIGKILLs`, async () => {
    const random = seededRandom(SEED);
    const wallet = await RecordedWalletRpc.start(recording, {
      startHeight: START_HEIGHT,
      finalHeight: BLOCKS + MIN_CONFIRMATIONS + 1,
      blocksPerTick: 30,
      tickMs: 1_000,
    });
    onTestFinished(() => wallet.close());
    const dataDir = join(tempDir(), 'data');
    const settings: Settings = {
      data_dir: dataDir,
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      wallet_rpc_url: wallet.url,
      min_confirmations: MIN_CONFIRMATIONS,
      min_payment_atomic: DUST_FLOOR.toString(),
      poll_interval_ms: 50,
      workers: 1,
      bloom_expected_items: 10_000,
      log_level: 'info',
    };
    const answers: Answer[] = [];
    const cursorsAtKill: number[] = [];
    let secrets: Secrets | undefined;

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // The chain grows by a share of the recording per cycle, however long cycles take.
      wallet.allowUpTo(START_HEIGHT + ((cycle + 1) * BLOCKS) / CYCLES);
      const service = await ServiceProcess.start({ settings });
      onTestFinished(() => service.kill('SIGKILL'));
      secrets ??= loadSecret(join(dataDir, 'secret.key'));
      const clients = startRedeemers(service.publicUrl, random, answers, cycle);

      await sleep(Math.floor(random() * LONGEST_RUN_MS));
      service.kill('SIGKILL');
      expect((await service.waitForExit(10_000)).signal).toBe('SIGKILL');
      await clients;

      cursorsAtKill.push(checkInvariants(join(dataDir, DATABASE_FILE), secrets, answers));
    }

    // One last run until the whole recording is in, killed the same way.
    wallet.allowUpTo(wallet.finalHeight);
    const last = await ServiceProcess.start({ settings });
    onTestFinished(() => last.kill('SIGKILL'));
    const clients = startRedeemers(last.publicUrl, random, answers, CYCLES);
    await waitForCursor(join(dataDir, DATABASE_FILE), wallet.finalHeight, 60_000);
    last.kill('SIGKILL');
    await last.waitForExit(10_000);
    await clients;
    const finalCursor = checkInvariants(join(dataDir, DATABASE_FILE), secrets!, answers);

    // The kills landed while transfers were still coming in, and work was done.
    expect(finalCursor).toBe(wallet.finalHeight);
    expect(
      new Set(cursorsAtKill.filter((c) => c < wallet.finalHeight)).size,
    ).toBeGreaterThanOrEqual(CYCLES / 4);
    expect(recording.transfers.length).toBeGreaterThan(2_500);
    expect(answers.filter((a) => a.status === 'success').length).toBeGreaterThan(20);
  }, 240_000);
});

/**
 * What must hold in the file after any crash. Returns the cursor.
 * - payments: exactly the recorded transfers at or below the cursor that
 *   carry a payment id, each once, with its exact amount and keyed tag;
 * - states: what the cursor implies (dust, pending or confirmed);
 * - claims: every `success` answered has its ticket with sha256(token),
 *   no payment id was answered `success` twice, and every answer for one
 *   payment id carried the same token.
 */
function checkInvariants(file: string, secrets: Secrets, answers: Answer[]): number {
  return readDatabase(file, (db) => {
    const cursorText = db
      .prepare("SELECT value FROM meta WHERE key = 'scan_height'")
      .pluck()
      .get() as string | undefined;
    const cursor = cursorText === undefined ? 0 : Number(cursorText);

    const duplicates = db
      .prepare(
        `SELECT count(*) FROM (SELECT 1 FROM payments GROUP BY txid, subaddr_major, subaddr_minor
         HAVING count(*) > 1)`,
      )
      .pluck()
      .get() as bigint;
    expect(duplicates).toBe(0n);

    const rows = db
      .prepare('SELECT txid, subaddr_minor, pid_tag, amount, height, state FROM payments')
      .all() as {
      txid: string;
      subaddr_minor: bigint;
      pid_tag: Buffer;
      amount: bigint;
      height: bigint;
      state: string;
    }[];
    const expected = recording.transfers.filter(
      (t) => t.height <= cursor && t.payment_id !== NO_PAYMENT_ID,
    );
    // A scan may also record transfers above the cursor (the wallet grew
    // while it was read); those must be real ones, and are checked again
    // once the cursor passes them.
    const recorded = new Set(recording.transfers.map((t) => `${t.txid}:${t.subaddr_index.minor}`));
    const belowCursor = rows.filter((r) => Number(r.height) <= cursor);
    expect(belowCursor.length).toBe(expected.length);
    for (const row of rows) expect(recorded.has(`${row.txid}:${row.subaddr_minor}`)).toBe(true);
    const byKey = new Map(rows.map((r) => [`${r.txid}:${r.subaddr_minor}`, r]));
    for (const transfer of expected) {
      const row = byKey.get(`${transfer.txid}:${transfer.subaddr_index.minor}`);
      expect(row, `transfer at height ${transfer.height}`).toBeDefined();
      expect(row!.amount).toBe(transfer.amount);
      expect(row!.pid_tag.equals(tagOf(secrets, transfer.payment_id))).toBe(true);
      expect(row!.state).toBe(stateAt(transfer, cursor));
    }

    const tokenHashOf = db.prepare('SELECT token_hash FROM tickets WHERE pid_tag = ?').pluck();
    const tokens = new Map<string, string>();
    const successes = new Set<string>();
    for (const answer of answers) {
      expect(tokens.get(answer.pid) ?? answer.token).toBe(answer.token);
      tokens.set(answer.pid, answer.token);
      if (answer.status !== 'success') continue;
      expect(successes.has(answer.pid), `a second success for one payment id`).toBe(false);
      successes.add(answer.pid);
      const stored = tokenHashOf.get(tagOf(secrets, answer.pid)) as Buffer | undefined;
      expect(stored?.toString('hex')).toBe(createHash('sha256').update(answer.token).digest('hex'));
    }
    return cursor;
  });
}

function stateAt(transfer: RecordedTransfer, cursor: number): string {
  if (transfer.amount < DUST_FLOOR) return 'dust';
  return cursor - transfer.height >= MIN_CONFIRMATIONS ? 'confirmed' : 'pending';
}

function tagOf(secrets: Secrets, pid: string): Buffer {
  return secrets.pidTag(Buffer.from(pid, 'hex'));
}

/**
 * CLIENTS loops redeeming random customer payment ids until the service
 * goes away. Only answers the service completed are recorded.
 */
async function startRedeemers(
  url: string,
  random: () => number,
  answers: Answer[],
  cycle: number,
): Promise<void> {
  const loop = async () => {
    for (;;) {
      const pid = recording.customers[Math.floor(random() * recording.customers.length)]!;
      let body: { status?: string; service_token?: string };
      try {
        const response = await fetch(`${url}/api/v1/redeem`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ pid }),
        });
        body = (await response.json()) as typeof body;
      } catch {
        return;
      }
      if (body.service_token)
        answers.push({ pid, status: body.status!, token: body.service_token, cycle });
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, loop));
}

async function waitForCursor(file: string, height: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cursor = readDatabase(file, (db) =>
      db.prepare("SELECT value FROM meta WHERE key = 'scan_height'").pluck().get(),
    );
    if (Number(cursor) >= height) return;
    if (Date.now() > deadline) throw new Error(`the cursor stayed at ${String(cursor)}`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
