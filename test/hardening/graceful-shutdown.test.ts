import { existsSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { DATABASE_FILE } from '../../src/service.js';
import {
  readDatabase,
  seedConfirmedPayment,
  type ServiceProcess,
  serveRecordedWallet,
} from '../support/crash-harness.js';
import { makeRecording } from '../support/recorded-wallet-rpc.js';
import { randomPid, tempDir, waitFor } from '../support/temp-service.js';

/*
 * `stronghold serve` stopped by a signal: the listeners stop accepting at
 * once, a request in flight is finished (or cut once the grace period of
 * Service.close, 5 s, runs out), the monitor stops between scans, and the
 * database is checkpointed and closed before the process exits 0.
 */

const GRACE_MS = 5_000;
const AMOUNT = 5_000_000_000_000n;

type Started = { service: ServiceProcess; dataDir: string; pid: string; port: number };

async function startBusyService(): Promise<Started> {
  const dataDir = join(tempDir(), 'data');
  const pid = randomPid();
  seedConfirmedPayment(dataDir, pid, AMOUNT);
  const recording = makeRecording({ seed: 3, blocks: 400, customers: 20, dustFloor: 1_000_000n });
  const chain = { startHeight: 10, finalHeight: 100_000, blocksPerTick: 20, tickMs: 1_000 };
  const { service } = await serveRecordedWallet(recording, chain, {
    data_dir: dataDir,
    min_payment_atomic: '1000000',
    bloom_expected_items: 10_000,
  });
  // The monitor is writing: scans commit while the signal arrives.
  const file = join(dataDir, DATABASE_FILE);
  const recorded = () =>
    readDatabase(file, (db) => db.prepare('SELECT count(*) FROM payments').pluck().get() as bigint);
  await waitFor('scans to commit payments', () => recorded() > 1n, 30_000);
  return { service, dataDir, pid, port: Number(new URL(service.publicUrl).port) };
}

/** A redeem whose body arrives in two parts, the second only on `finish()`. */
function slowRedeem(port: number, pid: string) {
  const body = JSON.stringify({ pid });
  const socket = connect(port, '127.0.0.1');
  let received = '';
  const response = new Promise<{ status: number; body: Record<string, unknown> }>(
    (resolve, reject) => {
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => {
        received += text;
        const parsed = parseResponse(received);
        if (parsed) resolve(parsed);
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`closed after ${JSON.stringify(received)}`)));
    },
  );
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(
    'POST /api/v1/redeem HTTP/1.1\r\nHost: shop.onion\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
  );
  return { response, closed, finish: () => socket.write(body.slice(10)), socket: socket as Socket };
}

function parseResponse(
  text: string,
): { status: number; body: Record<string, unknown> } | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = text.slice(0, end);
  const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? NaN);
  const body = text.slice(end + 4);
  if (body.length < length) return undefined;
  return {
    status: Number(head.split(' ')[1]),
    body: JSON.parse(body.slice(0, length)) as Record<string, unknown>,
  };
}

/** Whether a new TCP connection to `port` is accepted. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function walEmpty(dataDir: string): boolean {
  const wal = join(dataDir, `${DATABASE_FILE}-wal`);
  return !existsSync(wal) || statSync(wal).size === 0;
}

describe('stronghold serve stopped by a signal', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s refuses new connections, finishes the request in flight, exits 0 and leaves the WAL empty',
    async (signal) => {
      const { service, dataDir, pid, port } = await startBusyService();
      const slow = slowRedeem(port, pid);
      await new Promise((resolve) => setTimeout(resolve, 300));

      service.kill(signal);
      const signalledAt = Date.now();
      await waitFor('new connections to be refused', async () => !(await connects(port)), GRACE_MS);
      slow.finish();
      const answer = await slow.response;
      const exit = await service.waitForExit(GRACE_MS + 10_000);

      expect(answer).toEqual({
        status: 200,
        body: {
          status: 'success',
          service_token: expect.stringMatching(/^[0-9a-f]{64}$/),
          balance_atomic: AMOUNT.toString(),
        },
      });
      expect(exit).toEqual({ code: 0, signal: null });
      // Its connection closed with the answer: nothing waited for the grace period.
      expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS);
      expect(walEmpty(dataDir)).toBe(true);
      expect(service.records().some((r) => r.msg === 'stopped')).toBe(true);
      const tickets = readDatabase(join(dataDir, DATABASE_FILE), (db) =>
        db.prepare('SELECT count(*) FROM tickets').pluck().get(),
      );
      expect(tickets).toBe(1n);
    },
    60_000,
  );

  it('cuts a request still unfinished after the grace period and still exits 0 with an empty WAL', async () => {
    const { service, dataDir, pid, port } = await startBusyService();
    const slow = slowRedeem(port, pid);
    slow.response.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));

    service.kill('SIGTERM');
    const signalledAt = Date.now();
    await slow.closed;
    const cutAfter = Date.now() - signalledAt;
    const exit = await service.waitForExit(10_000);

    expect(cutAfter).toBeGreaterThanOrEqual(GRACE_MS - 500);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS + 3_000);
    expect(walEmpty(dataDir)).toBe(true);
  }, 60_000);
});
