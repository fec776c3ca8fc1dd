import type { Hono } from 'hono';

import { InvalidInputError } from '../errors.js';
import { parseIdempotencyKey, parseInvoiceInput } from '../invoices/invoice-input.js';
import type { InvoiceService } from '../invoices/invoice-service.js';
import type { InvoiceStatus } from '../invoices/invoice-status.js';
import type { SignatureVerifier } from '../merchants/signature-verifier.js';
import { concurrencyGate } from './concurrency-gate.js';
import { invoiceJson } from './invoice-json.js';
import { readJsonObject } from './json-body.js';
import { requireSignature } from './signature-middleware.js';

export type MerchantRoutesOptions = {
  invoices: InvoiceService;
  verifier: SignatureVerifier;
  walletHeight(): number;
  /**
   * Signed requests in progress at once (config `merchant_requests_in_flight`).
   * Measured on two cores under an invoice flood: 4 kept a redeem's p99
   * within about twice its value without the flood, at no cost to the
   * flood's own rate; 16 let it grow to three times (bench/README.md).
   */
  inFlight: number;
};

/** Signed requests that may wait for a place at the gate before 503 `overloaded`. */
const MAX_WAITING = 4_096;

const STATUSES = new Set(['New', 'Processing', 'Settled', 'Expired', 'Invalid']);

/** The signed merchant API on the public listener. */
export function registerMerchantRoutes(app: Hono, options: MerchantRoutesOptions): void {
  const { invoices } = options;
  const signed = requireSignature(options.verifier);
  // In hono `/api/v1/invoices/*` matches `/api/v1/invoices` itself too; a
  // second registration for the bare path would run the check twice, and
  // the second run would refuse the request as a replay of the first.
  app.use('/api/v1/invoices/*', concurrencyGate({ limit: options.inFlight, maxWaiting: MAX_WAITING }), signed);

  const render = (c: { req: { url: string; header(name: string): string | undefined } }, invoice: Parameters<typeof invoiceJson>[0]) =>
    invoiceJson(invoice, invoices.payments(invoice), {
      baseUrl: baseUrlOf(c.req.header('host')),
      walletHeight: options.walletHeight(),
      now: Math.floor(Date.now() / 1000),
    });

  app.post('/api/v1/invoices', async (c) => {
    const input = parseInvoiceInput(await readJsonObject(c));
    const key = parseIdempotencyKey(c.req.header('idempotency-key'));
    const { invoice, created } = await invoices.create(c.get('merchantId'), input, key);
    return c.json(render(c, invoice), created ? 201 : 200);
  });

  app.get('/api/v1/invoices', (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !STATUSES.has(status)) {
      throw new InvalidInputError('status must be one of New, Processing, Settled, Expired, Invalid');
    }
    const limit = parseBoundedInt(c.req.query('limit'), 'limit', 1, 100, 20);
    const cursor = parseBoundedInt(c.req.query('cursor'), 'cursor', 1, Number.MAX_SAFE_INTEGER, undefined);
    const page = invoices.list(c.get('merchantId'), status as InvoiceStatus | undefined, cursor, limit);
    return c.json({
      invoices: page.invoices.map((invoice) => render(c, invoice)),
      next_cursor: page.nextCursor === null ? null : String(page.nextCursor),
    });
  });

  app.get('/api/v1/invoices/:id', (c) => c.json(render(c, invoices.get(c.get('merchantId'), c.req.param('id')))));

  app.post('/api/v1/invoices/:id/cancel', (c) =>
    c.json(render(c, invoices.cancel(c.get('merchantId'), c.req.param('id')))),
  );
}

/**
 * The URL a customer reaches this service at, rebuilt from the Host header
 * as the signature check does: plain http, which is what an onion service
 * speaks.
 */
export function baseUrlOf(host: string | undefined): string {
  const safe = host && /^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host) ? host : 'localhost';
  return `http://${safe}`;
}

function parseBoundedInt<T extends number | undefined>(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
  fallback: T,
): number | T {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d{1,16}$/.test(value) || n < min || n > max) {
    throw new InvalidInputError(`${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}
