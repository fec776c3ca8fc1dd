import type { MiddlewareHandler } from 'hono';

import { UnavailableError } from '../errors.js';

export type ConcurrencyGateOptions = {
  /** Requests past the gate at once. */
  limit: number;
  /** Requests waiting at the gate before more are refused with 503 `overloaded`. */
  maxWaiting: number;
};

/**
 * Lets at most `limit` requests past at once and queues the rest in order.
 * The main thread's share of a signed merchant request (body, signature
 * base, invoice, commit, answer) comes in bursts as the worker pool and the
 * group commit settle whole batches; bounding the requests in progress
 * bounds those bursts, and so the time a customer's redeem can wait behind
 * them (bench/README.md, mixed-flood).
 */
export function concurrencyGate(options: ConcurrencyGateOptions): MiddlewareHandler {
  const { limit, maxWaiting } = options;
  checkInteger('limit', limit, 1, 1_000_000);
  checkInteger('maxWaiting', maxWaiting, 0, 1_000_000);
  let active = 0;
  const waiting: (() => void)[] = [];

  // A freed place goes straight to the first in line, so `active` only
  // falls when nobody waits.
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  };

  return async function concurrencyGate(c, next) {
    if (active < limit) active += 1;
    else if (waiting.length >= maxWaiting) {
      throw new UnavailableError('too many merchant requests in progress; retry shortly', 'overloaded');
    } else {
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    try {
      await next();
    } finally {
      release();
    }
  };
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  }
}
