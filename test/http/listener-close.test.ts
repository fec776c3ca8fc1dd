import { Agent, request } from 'node:http';

import { describe, expect, it, onTestFinished } from 'vitest';

import { Listener } from '../../src/http/listener.js';

/** A listener whose one route answers only when the test says so. */
async function slowListener() {
  let asked!: () => void;
  const requested = new Promise<void>((resolve) => (asked = resolve));
  let answer!: () => void;
  const answered = new Promise<Response>((resolve) => {
    answer = () => resolve(Response.json({ ok: true }));
  });
  const listener = await Listener.open({
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    maxConnections: 8,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 20_000,
    fetch: () => {
      asked();
      return answered;
    },
  });
  return { listener, asked: requested, answer };
}

describe('Listener.close', () => {
  it('answers a keep-alive request in flight with connection: close and ends its connection, without waiting out the grace period', async () => {
    const { listener, asked, answer } = await slowListener();
    const agent = new Agent({ keepAlive: true });
    onTestFinished(() => agent.destroy());

    const response = new Promise<{ connection: string | undefined; ended: Promise<void> }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: listener.port, path: '/', agent }, (res) => {
        const ended = new Promise<void>((resolveEnded) => res.socket.once('close', () => resolveEnded()));
        res.resume();
        resolve({ connection: res.headers.connection, ended });
      });
      req.on('error', reject);
      req.end();
    });
    await asked;

    // A grace period longer than the test's timeout: closing must not wait for it.
    const closed = listener.close(60_000);
    answer();
    const { connection, ended } = await response;
    expect(connection).toBe('close');
    await ended;
    await closed;
  });
});
