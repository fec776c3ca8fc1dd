import { connect, type Socket } from 'node:net';

import { describe, expect, it } from 'vitest';

import { MAX_URL_BYTES } from '../../src/http/listener.js';
import { MAX_METADATA_BYTES } from '../../src/invoices/invoice-input.js';
import { startTempService } from '../support/temp-service.js';
import { startMerchantService } from './merchant-service.js';
import { rawExchange, readUntilClosed, trickle } from './raw-http.js';

/*
 * The limits a client meets on a real listener. The settings are small so
 * that the tests run quickly; production values are in deploy/README.md.
 */

const BODY_LIMIT = 1_024;
const HEADERS_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 3_000;
const MAX_CONNECTIONS = 8;
// Timeouts are checked every quarter timeout; the rest is room for a busy machine.
const TIMEOUT_SLACK_MS = 3_000;

/** A route that answers 404 not_found: anything else means the request was not served. */
const UNKNOWN_TOKEN = `/api/v1/token/${'0'.repeat(64)}`;

const limited = {
  body_limit_bytes: BODY_LIMIT,
  headers_timeout_ms: HEADERS_TIMEOUT_MS,
  request_timeout_ms: REQUEST_TIMEOUT_MS,
  max_connections: MAX_CONNECTIONS,
};

async function publicPort(): Promise<number> {
  const { service } = await startTempService(limited);
  return service.publicListener.port!;
}

function post(path: string, body: string, extraHeaders = ''): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: shop.onion\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extraHeaders}\r\n${body}`
  );
}

function get(path: string, extraHeaders = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: shop.onion\r\nConnection: close\r\n${extraHeaders}\r\n`;
}

function errorCode(body: string): string {
  const parsed = JSON.parse(body) as { error: { code: string; message: string } };
  expect(typeof parsed.error.message).toBe('string');
  return parsed.error.code;
}

/** A connection that sends nothing, open until the server closes it. */
async function idleConnection(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

describe('request size limits', () => {
  it('answers 413 payload_too_large to a body over body_limit_bytes', async () => {
    const port = await publicPort();
    const answer = await rawExchange(
      port,
      post('/api/v1/redeem', JSON.stringify({ pid: 'a'.repeat(BODY_LIMIT) })),
    );

    expect(answer.status).toBe(413);
    expect(errorCode(answer.body)).toBe('payload_too_large');
  });

  it('answers 413 to a chunked body that grows past body_limit_bytes', async () => {
    const port = await publicPort();
    const chunk = 'x'.repeat(600);
    const request =
      'POST /api/v1/redeem HTTP/1.1\r\nHost: shop.onion\r\nContent-Type: application/json\r\n' +
      'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
      `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(3) +
      '0\r\n\r\n';

    const answer = await rawExchange(port, request);

    expect(answer.status).toBe(413);
    expect(errorCode(answer.body)).toBe('payload_too_large');
  });

  it('answers 431 header_too_large as JSON to a request head over 8 KiB', async () => {
    const port = await publicPort();
    const answer = await rawExchange(
      port,
      get('/api/v1/info', `X-Filler: ${'f'.repeat(9_000)}\r\n`),
    );

    expect(answer.status).toBe(431);
    expect(errorCode(answer.body)).toBe('header_too_large');
  });

  it(`answers 414 uri_too_long to a request target over ${MAX_URL_BYTES} bytes, and not to one at it`, async () => {
    const port = await publicPort();
    const prefix = '/api/v1/token/';
    const atLimit = `${prefix}${'a'.repeat(MAX_URL_BYTES - prefix.length)}`;

    const over = await rawExchange(port, get(`${atLimit}a`));
    const at = await rawExchange(port, get(atLimit));

    expect(over.status).toBe(414);
    expect(errorCode(over.body)).toBe('uri_too_long');
    expect(at.status).toBe(400);
    expect(errorCode(at.body)).toBe('invalid_token');
  });

  it('answers 400 bad_request as JSON to a request line that is not HTTP', async () => {
    const port = await publicPort();
    const answer = await rawExchange(port, 'HELLO THERE\r\n\r\n');

    expect(answer.status).toBe(400);
    expect(errorCode(answer.body)).toBe('bad_request');
  });

  it('answers 400 invalid_json to a body nested deeper than 8 levels', async () => {
    const port = await publicPort();
    const nested = `${'{"a":'.repeat(9)}1${'}'.repeat(9)}`;

    const answer = await rawExchange(port, post('/api/v1/redeem', nested));

    expect(answer.status).toBe(400);
    expect(errorCode(answer.body)).toBe('invalid_json');
  });

  it(`answers 400 metadata_too_large to invoice metadata over ${MAX_METADATA_BYTES} bytes`, async () => {
    const { signed } = await startMerchantService();
    const metadata = { note: 'm'.repeat(MAX_METADATA_BYTES) };

    const response = await signed('POST', '/api/v1/invoices', {
      body: JSON.stringify({ amount_atomic: '1000000000000', metadata }),
    });

    expect(response.status).toBe(400);
    expect(errorCode(await response.text())).toBe('metadata_too_large');
  });
});

describe('slow clients', () => {
  it('cuts off slowloris clients sending their head byte by byte at headers_timeout_ms, serving others meanwhile', async () => {
    const port = await publicPort();
    const slow = Array.from({ length: 3 }, () => {
      const socket = connect(port, '127.0.0.1');
      trickle(socket, get(UNKNOWN_TOKEN, `X-Slow: ${'s'.repeat(200)}\r\n`), 100);
      return readUntilClosed(socket);
    });

    const started = Date.now();
    const normal = await rawExchange(port, get(UNKNOWN_TOKEN));
    const normalMs = Date.now() - started;
    const answers = await Promise.all(slow);

    expect(normal.status).toBe(404);
    expect(errorCode(normal.body)).toBe('not_found');
    expect(normalMs).toBeLessThan(HEADERS_TIMEOUT_MS);
    for (const answer of answers) {
      expect(answer.status).toBe(408);
      expect(errorCode(answer.body)).toBe('request_timeout');
      expect(answer.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
      expect(answer.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + TIMEOUT_SLACK_MS);
    }
  });

  it('cuts off a client whose body trickles in at request_timeout_ms', async () => {
    const port = await publicPort();
    const body = JSON.stringify({ pid: '0123456789abcdef' });
    const socket = connect(port, '127.0.0.1');
    socket.write(
      'POST /api/v1/redeem HTTP/1.1\r\nHost: shop.onion\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${body.length}\r\n\r\n`,
    );
    trickle(socket, body, 500);

    const answer = await readUntilClosed(socket);

    expect(answer.status).toBe(408);
    expect(errorCode(answer.body)).toBe('request_timeout');
    expect(answer.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + TIMEOUT_SLACK_MS);
  });
});

describe('connection cap', () => {
  it(`answers 503 too_many_connections past max_connections, and serves again once slow ones are cut`, async () => {
    const port = await publicPort();
    const held = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, () => idleConnection(port)),
    );
    const heldClosed = held.map((socket) => readUntilClosed(socket));

    const refused = await rawExchange(port, get(UNKNOWN_TOKEN));
    const refusedByFetch = await fetch(`http://127.0.0.1:${port}${UNKNOWN_TOKEN}`);

    expect(refused.status).toBe(503);
    expect(errorCode(refused.body)).toBe('too_many_connections');
    expect(refused.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS);
    expect(refusedByFetch.status).toBe(503);
    expect(errorCode(await refusedByFetch.text())).toBe('too_many_connections');

    // The held connections sent no head: the headers timeout frees their places.
    await Promise.all(heldClosed);
    const served = await rawExchange(port, get(UNKNOWN_TOKEN));
    expect(served.status).toBe(404);
    expect(errorCode(served.body)).toBe('not_found');
  });
});
