import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

import type autocannon from 'autocannon';

import { RequestSigner } from './sign.js';

/**
 * What a load child sends, as data the runner can pass across a process
 * boundary. The same plan drives the service and its bare-hono limit, so
 * both see requests of the same shape built at the same cost.
 */
export type RequestPlan =
  /** POST /api/v1/redeem with a fresh random payment id each time. */
  | { kind: 'redeem-random' }
  /** POST /api/v1/redeem with the ids in `file`, in turn; `once` stops at the end. */
  | { kind: 'redeem-list'; file: string; once: boolean }
  /** GET /api/v1/token/:token with the tokens in `file`, in turn. */
  | { kind: 'token-list'; file: string }
  /** POST /api/v1/invoices, each signed with the merchant key (PKCS#8 DER, base64). */
  | { kind: 'signed-invoice'; privateKey: string; keyId: string };

/** The requests for autocannon, and whether a `once` list has run out. */
export type PlannedRequests = {
  requests: autocannon.Request[];
  exhausted(): boolean;
};

const JSON_HEADERS = { 'content-type': 'application/json' };

export function planRequests(plan: RequestPlan, baseUrl: string): PlannedRequests {
  switch (plan.kind) {
    case 'redeem-random':
      return endless((request) => redeem(request, randomPid()));
    case 'redeem-list':
      return fromList(readList(plan.file), plan.once, redeem);
    case 'token-list':
      return fromList(readList(plan.file), false, (request, token) => ({
        ...request,
        method: 'GET',
        path: `/api/v1/token/${token}`,
      }));
    case 'signed-invoice':
      return endless(signedInvoice(plan, baseUrl));
  }
}

type Build = (request: autocannon.RawRequest) => autocannon.RawRequest;

function endless(build: Build): PlannedRequests {
  return { requests: [{ setupRequest: build }], exhausted: () => false };
}

function fromList(
  items: string[],
  once: boolean,
  build: (request: autocannon.RawRequest, item: string) => autocannon.RawRequest,
): PlannedRequests {
  if (items.length === 0) throw new RangeError('a request list must not be empty');
  let next = 0;
  const setupRequest: Build = (request) => {
    // autocannon cannot end a run from here; past the end the last item
    // repeats and the load child stops counting and ends the run.
    const index = once ? Math.min(next, items.length - 1) : next % items.length;
    next++;
    return build(request, items[index]!);
  };
  return { requests: [{ setupRequest }], exhausted: () => once && next > items.length };
}

function redeem(request: autocannon.RawRequest, pid: string): autocannon.RawRequest {
  return {
    ...request,
    method: 'POST',
    path: '/api/v1/redeem',
    headers: { ...request.headers, ...JSON_HEADERS },
    body: `{"pid":"${pid}"}`,
  };
}

function signedInvoice(plan: { privateKey: string; keyId: string }, baseUrl: string): Build {
  const key = createPrivateKey({ key: Buffer.from(plan.privateKey, 'base64'), format: 'der', type: 'pkcs8' });
  const signer = new RequestSigner(key, plan.keyId);
  const url = new URL('/api/v1/invoices', baseUrl);
  const run = randomPid();
  let order = 0;
  return (request) => {
    // A new order id per request: merchants do, and identical requests in
    // the same second would carry identical signatures, which are replays.
    const body = `{"amount_atomic":"1000000000000","order_id":"bench-${run}-${order++}"}`;
    return {
      ...request,
      method: 'POST',
      path: url.pathname,
      headers: { ...request.headers, ...JSON_HEADERS, host: url.host, ...signer.sign('POST', url, body) },
      body,
    };
  };
}

function readList(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 0);
}

/**
 * 16 hex digits. Math.random is enough here: the ids only need to miss the
 * stored ones, and crypto.randomBytes would cost the load generator more
 * than the request it builds.
 */
export function randomPid(): string {
  const high = Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0');
  const low = Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0');
  return high + low;
}
