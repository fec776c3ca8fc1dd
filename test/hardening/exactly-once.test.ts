import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { DATABASE_FILE, Service } from '../../src/service.js';
import { loadSecret } from '../../src/tickets/secrets.js';
import { readDatabase, seedConfirmedPayment } from '../support/crash-harness.js';
import { randomPid, silentLogger, tempConfig } from '../support/temp-service.js';

const REQUESTS = 1_000;
const AMOUNT = 123_456_789_012_345n;

type Answer = {
  status: number;
  body: { status: string; service_token: string; balance_atomic: string };
};

/** Connections open at once on the client side, and the most seen. */
const open = { now: 0, peak: 0 };

/** One POST over its own connection. */
function redeemOnce(agent: Agent, port: number, pid: string): Promise<Answer> {
  const body = JSON.stringify({ pid });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/v1/redeem',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }),
        );
      },
    );
    req.on('socket', (socket) => {
      open.peak = Math.max(open.peak, ++open.now);
      socket.once('close', () => open.now--);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('redeem under concurrency', () => {
  it(`answers ${REQUESTS} concurrent redeems of one payment id over real sockets with one success and one token`, async () => {
    const config = await tempConfig();
    const pid = randomPid();
    seedConfirmedPayment(config.data_dir, pid, AMOUNT);
    const service = await Service.start(config, silentLogger());
    const agent = new Agent({ keepAlive: false, maxSockets: REQUESTS });
    try {
      const answers = await Promise.all(
        Array.from({ length: REQUESTS }, () =>
          redeemOnce(agent, service.publicListener.port!, pid),
        ),
      );

      const statuses = answers.map((a) => a.body.status);
      const tokens = new Set(answers.map((a) => a.body.service_token));
      const token = secretsToken(config.secret_file, pid);
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(statuses.filter((s) => s === 'success')).toHaveLength(1);
      expect(statuses.filter((s) => s === 'already_claimed')).toHaveLength(REQUESTS - 1);
      expect([...tokens]).toEqual([token]);
      expect(new Set(answers.map((a) => a.body.balance_atomic))).toEqual(
        new Set([AMOUNT.toString()]),
      );
      // The requests were in flight together, each on its own connection.
      expect(open.peak).toBe(REQUESTS);

      const rows = readDatabase(join(config.data_dir, DATABASE_FILE), (db) =>
        db.prepare('SELECT token_hash FROM tickets').pluck().all(),
      ) as Buffer[];
      expect(rows.map((h) => h.toString('hex'))).toEqual([
        createHash('sha256').update(token).digest('hex'),
      ]);
    } finally {
      agent.destroy();
      await service.close(100);
    }
  }, 120_000);
});

function secretsToken(secretFile: string, pid: string): string {
  return loadSecret(secretFile).token(Buffer.from(pid, 'hex'));
}
