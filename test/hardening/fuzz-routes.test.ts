import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { seedConfirmedPayment, tableContents } from '../support/crash-harness.js';
import { randomPid } from '../support/temp-service.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { type MerchantService, startMerchantService } from './merchant-service.js';
import { rawExchange } from './raw-http.js';

/*
 * Property-based fuzzing of every public route of a real service over real
 * sockets. Each request is hostile or malformed in some way: random and
 * broken JSON, wrong types, huge numbers, unicode, missing and duplicate
 * fields, odd paths, queries and headers. For every one: no 5xx; every
 * 4xx is JSON {"error":{"code","message"}} that does not echo a payment id
 * or token back; and the database is byte-for-byte unchanged unless the
 * request succeeded and is one that writes.
 *
 * The merchant's webhook endpoint hangs, so no delivery attempt writes to
 * the database while the fuzzing runs.
 */

const RUNS = 300;
const SEED = Number(process.env.HARDENING_SEED ?? 424_242);
const PARAMETERS = { numRuns: RUNS, seed: SEED };
const AMOUNT = 7_000_000_000_000n;
const PAID_PID = randomPid();
const WEBHOOK_SECRET = 'fuzzing-webhook-secret';

let fixture: MerchantService;
let receiver: WebhookReceiver;
let reader: Database.Database;
let paidToken = '';
const invoiceIds: string[] = [];
/** Requests sent, by route. */
const fuzzed = new Map<string, number>();
/** Answers by route and status, for the report. */
const statuses = new Map<string, Record<string, number>>();

function count(route: string, status: number | undefined): void {
  fuzzed.set(route, (fuzzed.get(route) ?? 0) + 1);
  const byStatus = statuses.get(route) ?? {};
  const key = String(status ?? 'closed');
  byStatus[key] = (byStatus[key] ?? 0) + 1;
  statuses.set(route, byStatus);
}

const cleanups: (() => unknown)[] = [];

// One service for the whole file, seeded with a paid payment id, a merchant
// and three invoices.
beforeAll(async () => {
  receiver = await WebhookReceiver.start(WEBHOOK_SECRET);
  receiver.hang();
  fixture = await startMerchantService({
    webhookUrl: receiver.url(),
    webhookSecret: WEBHOOK_SECRET,
    overrides: { webhook_timeout_ms: 600_000 },
    seed: (dataDir) => seedConfirmedPayment(dataDir, PAID_PID, AMOUNT),
    cleanup: (fn) => cleanups.push(fn),
  });
  reader = new Database(fixture.dbFile, { readonly: true, fileMustExist: true });
  const redeemed = await publicFetch({
    method: 'POST',
    path: '/api/v1/redeem',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pid: PAID_PID }),
  });
  paidToken = ((await redeemed.json()) as { service_token: string }).service_token;
  for (let i = 0; i < 3; i++) {
    const created = await fixture.signed('POST', '/api/v1/invoices', {
      body: '{"amount_atomic":"1000000000000"}',
    });
    invoiceIds.push(((await created.json()) as { id: string }).id);
  }
}, 60_000);

afterAll(async () => {
  reader?.close();
  for (const fn of cleanups.reverse()) await fn();
  await receiver?.stop();
  console.log(
    `answers per route and status: ${JSON.stringify(Object.fromEntries(statuses), null, 1)}`,
  );
}, 60_000);

// ---- arbitraries -----------------------------------------------------------

const HEX16 = /^[0-9a-f]{16}$/;

const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.stringMatching(/^[0-9a-fA-F]{14,18}$/),
  fc.stringMatching(/^[0-9a-f]{60,70}$/),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '0123456789ABCDEF',
    '0123456789abcdeg',
    ' 0123456789abcdef',
    '0x0123456789abcd',
    '٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥',
    '𝟘𝟙𝟚𝟛𝟜𝟝𝟞𝟟𝟠𝟡𝟘𝟙𝟚𝟛𝟜𝟝',
    '\u202e0123456789abcdef',
    'x'.repeat(5_000),
    '-1',
    '1e400',
    '99999999999999999999999',
    '9223372036854775808',
    '18446744073709551616',
  ),
);

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(-0, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, -1, 0, 1e21),
);

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileText },
  { weight: 2, arbitrary: hostileNumber },
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue(), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 4 }),
);

/** An object with the route's fields (each maybe missing or hostile) and extra keys. */
function objectWith(
  fields: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(fields).map(([key, valid]) =>
    fc
      .option(fc.oneof(valid, hostileValue), { nil: undefined })
      .map((value) => [key, value] as const),
  );
  return fc
    .tuple(
      fc.tuple(...entries),
      fc.dictionary(fc.string({ maxLength: 12 }), hostileValue, { maxKeys: 3 }),
    )
    .map(([pairs, extra]) => {
      const object: Record<string, unknown> = { ...extra };
      for (const [key, value] of pairs) if (value !== undefined) object[key] = value;
      return object;
    });
}

/** Body text: JSON of a fuzzed object most of the time, otherwise anything at all. */
function bodyText(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string> {
  const field = fc.constantFrom(...Object.keys(fields));
  return fc.oneof(
    { weight: 6, arbitrary: objectWith(fields).map((o) => JSON.stringify(o)) },
    // Duplicate fields: JSON.parse keeps the last one.
    fc
      .tuple(objectWith(fields), field, hostileValue)
      .map(
        ([o, key, value]) =>
          `${JSON.stringify(o).slice(0, -1)}${Object.keys(o).length ? ',' : ''}"${key}":${JSON.stringify(value) ?? 'null'}}`,
      ),
    // Numbers JSON.parse cannot hold exactly.
    fc
      .tuple(
        field,
        fc.constantFrom(
          '123456789012345678901234567890',
          '1e999',
          '-1e999',
          '0.1e-400',
          '9007199254740993',
        ),
      )
      .map(([key, literal]) => `{"${key}":${literal}}`),
    fc.json(),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.constantFrom(
      '',
      '{',
      '{"a":}',
      '[]',
      'null',
      '"x"',
      '{}',
      '{"__proto__":{"x":1}}',
      `${'['.repeat(50)}${']'.repeat(50)}`,
    ),
    fc.integer({ min: 2, max: 20 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
  );
}

/** Mostly JSON, so that most bodies reach the parser and the validation. */
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  { weight: 4, arbitrary: otherContentType() },
);

function otherContentType(): fc.Arbitrary<string> {
  return fc.constantFrom(
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/jsonx',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
  );
}

/** A path segment: random text, percent-encoded, or a shape near a valid id. */
const segment = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).map(encodeURIComponent),
  fc.webSegment().filter((s) => s.length > 0),
  fc.stringMatching(/^[0-9a-fA-F]{60,68}$/),
  fc.stringMatching(/^inv_[A-Za-z0-9_-]{20,24}$/),
  fc.constantFrom(
    '%00',
    '%ff',
    '%2e%2e',
    'a%2Fb',
    '%E2%80%AE',
    '%F0%9F%98%80',
    '..%2F..%2Fadmin',
    'null',
    '0',
  ),
);

const query = fc.oneof(
  fc.constant(''),
  fc.webQueryParameters().map((q) => `?${q}`),
  fc
    .dictionary(fc.constantFrom('status', 'limit', 'cursor', 'x'), hostileText.map(String), {
      maxKeys: 3,
    })
    .map((q) => `?${new URLSearchParams(q as Record<string, string>).toString()}`),
);

const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'connection',
  'transfer-encoding',
  'expect',
  'upgrade',
  'keep-alive',
  'te',
  'trailer',
  'content-type',
  'signature',
  'signature-input',
  'content-digest',
]);

const extraHeaders = fc.dictionary(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((name) => !FORBIDDEN_HEADERS.has(name)),
  fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,100}$/),
  { maxKeys: 4 },
);

const invoiceFields = {
  amount_atomic: fc.oneof(
    fc.bigInt({ min: 1n, max: (1n << 63n) - 1n }).map(String),
    fc.constant('1000000000000'),
  ),
  order_id: fc.string({ minLength: 1, maxLength: 100 }),
  description: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 500 }),
  metadata: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), {
    maxKeys: 5,
  }),
  // Valid expiries stay over an hour: an invoice expiring during the run would
  // change the database in the background and blur the checks.
  expires_in: fc.integer({ min: 3_600, max: 30 * 86_400 }),
  confirmations: fc.integer({ min: 0, max: 100 }),
};

// ---- the check ------------------------------------------------------------

type Fuzzed = { method: string; path: string; headers?: Record<string, string>; body?: string };
type Expectation = {
  /** Whether a 2xx of this route may change the database. */
  writes?: boolean;
  /** Inputs that must not come back in an error message. */
  secrets?: string[];
};

function contents(): string {
  return tableContents(reader);
}

async function check(
  route: string,
  send: () => Promise<Response>,
  expectation: Expectation = {},
): Promise<void> {
  const before = contents();
  const response = await send();
  count(route, response.status);
  const text = await response.text();

  expect(response.status, text).toBeLessThan(500);
  if (response.status >= 400) {
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(text) as { error: { code: unknown; message: unknown } };
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error.code).toMatch(/^[a-z_]+$/);
    expect(typeof body.error.message).toBe('string');
    for (const secret of expectation.secrets ?? []) {
      if (secret.length >= 8) expect(body.error.message).not.toContain(secret);
    }
  }
  if (response.status >= 400 || !expectation.writes) expect(contents()).toBe(before);
}

function publicFetch(request: Fuzzed): Promise<Response> {
  return fetch(`${fixture.publicUrl}${request.path}`, {
    method: request.method,
    headers: request.headers ?? {},
    ...(request.body !== undefined ? { body: request.body } : {}),
  });
}

// ---- the routes -----------------------------------------------------------

describe('fuzzing every public route', () => {
  it('has a paid payment id redeemed and three invoices to aim at', () => {
    expect(paidToken).toMatch(/^[0-9a-f]{64}$/);
    expect(invoiceIds).toHaveLength(3);
  });

  it(`GET /api/v1/info: ${RUNS} requests with random queries and headers`, async () => {
    await fc.assert(
      fc.asyncProperty(query, extraHeaders, async (q, headers) => {
        await check('GET /api/v1/info', () =>
          publicFetch({ method: 'GET', path: `/api/v1/info${q}`, headers }),
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`POST /api/v1/redeem: ${RUNS} hostile bodies, content types and headers`, async () => {
    const pid = fc.oneof(hostileText, fc.constant(PAID_PID), fc.stringMatching(HEX16));
    const body = fc.oneof(
      { weight: 3, arbitrary: bodyText({ pid }) },
      pid.map((p) => JSON.stringify({ pid: p })),
    );
    await fc.assert(
      fc.asyncProperty(body, contentType, extraHeaders, async (text, type, headers) => {
        const secrets = [...text.matchAll(/[0-9a-fA-F]{16}/g)].map((m) => m[0]);
        await check(
          'POST /api/v1/redeem',
          () =>
            publicFetch({
              method: 'POST',
              path: '/api/v1/redeem',
              headers: { ...headers, 'content-type': type },
              body: text,
            }),
          { writes: true, secrets },
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`GET /api/v1/token/:token: ${RUNS} hostile tokens`, async () => {
    const token = fc.oneof(
      { weight: 6, arbitrary: segment },
      fc.constant(paidToken),
      fc.constant(paidToken.toUpperCase()),
    );
    await fc.assert(
      fc.asyncProperty(token, query, async (t, q) => {
        await check(
          'GET /api/v1/token/:token',
          () => publicFetch({ method: 'GET', path: `/api/v1/token/${t}${q}` }),
          {
            secrets: [decodeSafely(t)],
          },
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`POST /api/v1/invoices (signed): ${RUNS} hostile bodies`, async () => {
    const idempotency = fc.option(fc.stringMatching(/^[\x21-\x7e]{1,120}$/), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(
        bodyText(invoiceFields),
        contentType,
        idempotency,
        async (text, type, key) => {
          const headers = { 'content-type': type, ...(key ? { 'idempotency-key': key } : {}) };
          await check(
            'POST /api/v1/invoices (signed)',
            () => fixture.signed('POST', '/api/v1/invoices', { body: text, headers }),
            {
              writes: true,
            },
          );
        },
      ),
      PARAMETERS,
    );
  }, 180_000);

  it(`POST /api/v1/invoices (unsigned or forged): ${RUNS} requests`, async () => {
    const signatureHeaders = fc.record(
      {
        signature: fc.oneof(fc.stringMatching(/^[\x20-\x7e]{0,200}$/), fc.constant('sig1=:AAAA:')),
        'signature-input': fc.oneof(
          fc.stringMatching(/^[\x20-\x7e]{0,200}$/),
          fc.constant(
            `sig1=("@method" "@target-uri" "content-digest");created=${Math.floor(Date.now() / 1000)};keyid="k";alg="ed25519"`,
          ),
        ),
        'content-digest': fc.stringMatching(/^[\x20-\x7e]{0,100}$/),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(bodyText(invoiceFields), signatureHeaders, async (text, headers) => {
        await check('POST /api/v1/invoices (unsigned)', () =>
          publicFetch({
            method: 'POST',
            path: '/api/v1/invoices',
            headers: { 'content-type': 'application/json', ...headers },
            body: text,
          }),
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`GET /api/v1/invoices (signed): ${RUNS} hostile queries`, async () => {
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        await check('GET /api/v1/invoices (signed)', () =>
          fixture.signed('GET', `/api/v1/invoices${q}`),
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`GET /api/v1/invoices/:id (signed): ${RUNS} hostile ids`, async () => {
    const id = fc.oneof({ weight: 6, arbitrary: segment }, fc.constantFrom(...invoiceIds));
    await fc.assert(
      fc.asyncProperty(id, async (i) => {
        await check('GET /api/v1/invoices/:id (signed)', () =>
          fixture.signed('GET', `/api/v1/invoices/${i}`),
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`POST /api/v1/invoices/:id/cancel (signed): ${RUNS} hostile ids and bodies`, async () => {
    const id = fc.oneof({ weight: 6, arbitrary: segment }, fc.constantFrom(...invoiceIds));
    const body = fc.option(bodyText({ reason: hostileText }), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(id, body, async (i, text) => {
        await check(
          'POST /api/v1/invoices/:id/cancel (signed)',
          () =>
            fixture.signed(
              'POST',
              `/api/v1/invoices/${i}/cancel`,
              text === undefined ? {} : { body: text },
            ),
          { writes: true },
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`GET /pay/:id: ${RUNS} hostile ids`, async () => {
    const id = fc.oneof({ weight: 6, arbitrary: segment }, fc.constantFrom(...invoiceIds));
    await fc.assert(
      fc.asyncProperty(id, query, extraHeaders, async (i, q, headers) => {
        await check('GET /pay/:id', () =>
          publicFetch({ method: 'GET', path: `/pay/${i}${q}`, headers }),
        );
      }),
      PARAMETERS,
    );
  }, 120_000);

  it(`every route with a method it does not serve: ${RUNS} requests`, async () => {
    const path = fc.constantFrom(
      '/api/v1/info',
      '/api/v1/redeem',
      `/api/v1/token/${'0'.repeat(64)}`,
      '/api/v1/invoices',
      '/api/v1/invoices/inv_0000000000000000000000',
      '/api/v1/invoices/inv_0000000000000000000000/cancel',
      '/pay/inv_0000000000000000000000',
    );
    const method = fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'GETX');
    await fc.assert(
      fc.asyncProperty(
        method,
        path,
        fc.option(fc.json(), { nil: undefined }),
        async (m, p, body) => {
          await check('unserved methods', () =>
            publicFetch({ method: m, path: p, ...(body !== undefined ? { body } : {}) }),
          );
        },
      ),
      PARAMETERS,
    );
  }, 120_000);

  it(`raw malformed HTTP: ${RUNS} requests answered 4xx JSON or closed, and the service keeps serving`, async () => {
    const port = fixture.service.publicListener.port!;
    const valid = 'GET /api/v1/info HTTP/1.1\r\nHost: shop.onion\r\nConnection: close\r\n\r\n';
    const mutated = fc
      .tuple(fc.nat({ max: valid.length - 1 }), fc.uint8Array({ minLength: 1, maxLength: 8 }))
      .map(([at, bytes]) =>
        Buffer.concat([
          Buffer.from(valid.slice(0, at), 'latin1'),
          bytes,
          Buffer.from(valid.slice(at), 'latin1'),
        ]),
      );
    const garbage = fc
      .uint8Array({ minLength: 1, maxLength: 300 })
      .map((bytes) => Buffer.from(bytes));
    const lines = fc
      .tuple(
        fc.constantFrom('GET', 'POST', 'G E T', ''),
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/9.9', ''),
      )
      .map(([m, target, version]) =>
        Buffer.from(`${m} ${target} ${version}\r\nHost: x\r\nConnection: close\r\n\r\n`, 'utf8'),
      );
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, garbage, lines), async (bytes) => {
        const before = contents();
        const answer = await rawExchange(
          port,
          Buffer.concat([bytes, Buffer.from('\r\n\r\n')]),
          20_000,
        );
        count('raw HTTP', answer.status);
        if (answer.status !== undefined) expect(answer.status).toBeLessThan(500);
        if (answer.status !== undefined && answer.status >= 400) {
          const body = JSON.parse(answer.body.slice(0, answer.body.lastIndexOf('}') + 1)) as {
            error: { code: string };
          };
          expect(body.error.code).toMatch(/^[a-z_]+$/);
        }
        expect(contents()).toBe(before);
      }),
      PARAMETERS,
    );
    const info = await publicFetch({ method: 'GET', path: '/api/v1/info' });
    expect(info.status).toBe(200);
  }, 180_000);

  it('fuzzed every route as many times as it says', () => {
    expect(fuzzed.size).toBe(11);
    for (const [route, count] of fuzzed) expect(count, route).toBeGreaterThanOrEqual(RUNS);
  });
});

function decodeSafely(segmentText: string): string {
  try {
    return decodeURIComponent(segmentText);
  } catch {
    return segmentText;
  }
}
