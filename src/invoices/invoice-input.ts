import { InvalidInputError } from '../errors.js';

export type InvoiceInput = {
  amount: bigint;
  orderId: string | null;
  description: string | null;
  metadata: Record<string, unknown>;
  expiresIn: number | undefined;
  confirmations: number | undefined;
};

const FIELDS = new Set(['amount_atomic', 'order_id', 'description', 'metadata', 'expires_in', 'confirmations']);
const MAX_AMOUNT = (1n << 63n) - 1n;
export const MAX_METADATA_BYTES = 4096;

/** Validates the body of POST /api/v1/invoices; one clear message per rule. */
export function parseInvoiceInput(body: Record<string, unknown>): InvoiceInput {
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key)) throw new InvalidInputError(`unknown field "${key}"`, 'unknown_field');
  }
  return {
    amount: parseAmount(body.amount_atomic),
    orderId: optionalText(body.order_id, 'order_id', 100),
    description: optionalText(body.description, 'description', 500),
    metadata: parseMetadata(body.metadata),
    expiresIn: optionalInt(body.expires_in, 'expires_in', 10, 30 * 86_400),
    confirmations: optionalInt(body.confirmations, 'confirmations', 0, 100),
  };
}

function parseAmount(value: unknown): bigint {
  if (typeof value !== 'string' || !/^[1-9]\d{0,18}$/.test(value) || BigInt(value) > MAX_AMOUNT) {
    throw new InvalidInputError(
      'amount_atomic must be a decimal string of a positive amount in piconero, below 2^63',
      'invalid_amount',
    );
  }
  return BigInt(value);
}

function optionalText(value: unknown, field: string, max: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > max || /[\u0000-\u001f]/.test(value)) {
    throw new InvalidInputError(`${field} must be a string of 1 to ${max} printable characters`);
  }
  return value;
}

function optionalInt(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw new InvalidInputError(`${field} must be an integer from ${min} to ${max}`);
  }
  return value as number;
}

function parseMetadata(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInputError('metadata must be a JSON object');
  }
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_METADATA_BYTES) {
    throw new InvalidInputError(`metadata must serialize to at most ${MAX_METADATA_BYTES} bytes`, 'metadata_too_large');
  }
  return value as Record<string, unknown>;
}

/** An Idempotency-Key header value, when given. */
export function parseIdempotencyKey(value: string | undefined): string | null {
  if (value === undefined) return null;
  if (!/^[\x21-\x7e]{1,100}$/.test(value)) {
    throw new InvalidInputError('Idempotency-Key must be 1 to 100 visible ASCII characters');
  }
  return value;
}
