import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';

import { concurrencyGate } from '../../src/http/concurrency-gate.js';
import { errorResponse } from '../../src/http/errors.js';

/** An app whose one route holds every request until `open()` is called. */
function gatedApp(limit: number, maxWaiting: number) {
  const app = new Hono();
  let inside = 0;
  let most = 0;
  const held: (() => void)[] = [];
  app.onError((err, c) => errorResponse(c, err));
  app.use('/work', concurrencyGate({ limit, maxWaiting }));
  app.get('/work', async (c) => {
    inside += 1;
    most = Math.max(most, inside);
    await new Promise<void>((resolve) => held.push(resolve));
    inside -= 1;
    return c.json({ ok: true });
  });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    app,
    most: () => most,
    held: () => held.length,
    settle,
    async openAll() {
      while (held.length > 0) {
        held.splice(0).forEach((resolve) => resolve());
        await settle();
      }
    },
  };
}

describe('concurrencyGate', () => {
  it('lets at most `limit` requests past at once and serves the rest in turn', async () => {
    const gated = gatedApp(3, 100);

    const answers = Array.from({ length: 10 }, () => gated.app.request('/work'));
    await gated.settle();
    expect(gated.held()).toBe(3);

    await gated.openAll();
    const statuses = (await Promise.all(answers)).map((res) => res.status);

    expect(statuses).toEqual(Array(10).fill(200));
    expect(gated.most()).toBe(3);
  });

  it('answers 503 overloaded once maxWaiting requests wait, and serves those that wait', async () => {
    const gated = gatedApp(1, 2);

    const answers = Array.from({ length: 5 }, () => gated.app.request('/work'));
    await gated.settle();
    const refused = await Promise.all(answers.slice(3));
    expect(refused.map((res) => res.status)).toEqual([503, 503]);
    expect(await refused[0]!.json()).toEqual({
      error: { code: 'overloaded', message: expect.any(String) },
    });

    await gated.openAll();
    expect((await Promise.all(answers.slice(0, 3))).map((res) => res.status)).toEqual([200, 200, 200]);
  });

  it('frees its place when the route throws', async () => {
    const app = new Hono();
    app.onError((err, c) => errorResponse(c, err));
    app.use('/fail', concurrencyGate({ limit: 1, maxWaiting: 0 }));
    app.get('/fail', () => {
      throw new Error('boom');
    });

    expect((await app.request('/fail')).status).toBe(500);
    expect((await app.request('/fail')).status).toBe(500);
  });

  it('refuses a limit or maxWaiting out of range', () => {
    expect(() => concurrencyGate({ limit: 0, maxWaiting: 1 })).toThrow(RangeError);
    expect(() => concurrencyGate({ limit: 1, maxWaiting: -1 })).toThrow(RangeError);
    expect(() => concurrencyGate({ limit: 1.5, maxWaiting: 1 })).toThrow(TypeError);
  });
});
