import { keccak_256 } from '@noble/hashes/sha3.js';

import { Base58Error, decodeBase58, encodeBase58, encodedLength } from './base58.js';

/**
 * Monero address codec. An address is base58 of
 * `varint(prefix) || spendKey(32) || viewKey(32) || [paymentId(8)] || checksum(4)`
 * where the checksum is the first four bytes of Keccak-256 over everything
 * before it. The prefix alone tells the network and the kind of address.
 */

export type MoneroNetwork = 'mainnet' | 'stagenet' | 'testnet';
export type AddressKind = 'standard' | 'integrated' | 'subaddress';

export interface DecodedAddress {
  network: MoneroNetwork;
  kind: AddressKind;
  publicSpendKey: Uint8Array;
  publicViewKey: Uint8Array;
  /** Present only for `integrated`: the 8-byte id as written, not encrypted. */
  paymentId?: Uint8Array;
}

/** The rule an address broke; stable, for tests and diagnostics. */
export type AddressFailure =
  | 'bad_character'
  | 'bad_length'
  | 'bad_encoding'
  | 'bad_checksum'
  | 'unknown_prefix'
  | 'wrong_kind';

/** Raised for any address the service cannot accept; callers branch on `code`. */
export class AddressError extends Error {
  readonly code = 'invalid_address';
  readonly reason: AddressFailure;

  constructor(reason: AddressFailure, message: string) {
    super(message);
    this.name = 'AddressError';
    this.reason = reason;
  }
}

export const PAYMENT_ID_BYTES = 8;
const KEY_BYTES = 32;
const CHECKSUM_BYTES = 4;
// Monero prefixes are uint64 varints; five bytes already cover 2^35, far
// beyond any assigned prefix, and bounding the read keeps it in a `number`.
const MAX_PREFIX_BYTES = 5;

const PREFIXES: Readonly<Record<MoneroNetwork, Readonly<Record<AddressKind, number>>>> = {
  mainnet: { standard: 18, integrated: 19, subaddress: 42 },
  stagenet: { standard: 24, integrated: 25, subaddress: 36 },
  testnet: { standard: 53, integrated: 54, subaddress: 63 },
};

const MIN_ADDRESS_BYTES = 1 + 2 * KEY_BYTES + CHECKSUM_BYTES;
const MAX_ADDRESS_BYTES = MAX_PREFIX_BYTES + 2 * KEY_BYTES + PAYMENT_ID_BYTES + CHECKSUM_BYTES;

// Judging the text length first names a truncated or padded address as
// such, rather than as whatever its ragged last block happens to decode to.
const ADDRESS_LENGTHS = new Set(
  Array.from({ length: MAX_ADDRESS_BYTES - MIN_ADDRESS_BYTES + 1 }, (_, i) =>
    encodedLength(MIN_ADDRESS_BYTES + i),
  ),
);

const KIND_OF_PREFIX = new Map<number, { network: MoneroNetwork; kind: AddressKind }>(
  Object.entries(PREFIXES).flatMap(([network, kinds]) =>
    Object.entries(kinds).map(([kind, prefix]) => [
      prefix,
      { network: network as MoneroNetwork, kind: kind as AddressKind },
    ]),
  ),
);

/** Throws `AddressError` for bad characters, length, checksum or prefix. */
export function decodeAddress(address: string): DecodedAddress {
  const bytes = decodeAddressBytes(address);
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  if (!bytesEqual(checksumOf(body), bytes.subarray(body.length))) {
    throw new AddressError('bad_checksum', 'address checksum does not match');
  }

  const { value: prefix, length: prefixLength } = readPrefix(body);
  const found = KIND_OF_PREFIX.get(prefix);
  if (found === undefined) {
    throw new AddressError('unknown_prefix', `address prefix ${prefix} is not a Monero address`);
  }

  const payload = body.subarray(prefixLength);
  const expected = 2 * KEY_BYTES + (found.kind === 'integrated' ? PAYMENT_ID_BYTES : 0);
  if (payload.length !== expected) {
    const message = `a ${found.kind} address carries ${expected} bytes after its prefix`;
    throw new AddressError('bad_length', message);
  }

  const decoded: DecodedAddress = {
    ...found,
    publicSpendKey: payload.slice(0, KEY_BYTES),
    publicViewKey: payload.slice(KEY_BYTES, 2 * KEY_BYTES),
  };
  if (found.kind === 'integrated') decoded.paymentId = payload.slice(2 * KEY_BYTES);
  return decoded;
}

/** Builds the address string; the inverse of `decodeAddress`. */
export function encodeAddress(parts: DecodedAddress): string {
  checkLength('publicSpendKey', parts.publicSpendKey, KEY_BYTES);
  checkLength('publicViewKey', parts.publicViewKey, KEY_BYTES);
  const integrated = parts.kind === 'integrated';
  if (integrated) checkLength('paymentId', parts.paymentId, PAYMENT_ID_BYTES);
  else if (parts.paymentId !== undefined) {
    throw new TypeError(`paymentId is only allowed on an integrated address, not ${parts.kind}`);
  }

  const prefix = encodeVarint(PREFIXES[parts.network][parts.kind]);
  const body = concat(
    prefix,
    parts.publicSpendKey,
    parts.publicViewKey,
    integrated ? (parts.paymentId as Uint8Array) : new Uint8Array(0),
  );
  return encodeBase58(concat(body, checksumOf(body)));
}

/**
 * Combines a wallet's primary address with an 8-byte payment id, as the
 * wallet's own `make_integrated_address` does. Subaddresses and integrated
 * addresses are refused: Monero defines no integrated form of either.
 */
export function makeIntegratedAddress(primaryAddress: string, paymentId: Uint8Array): string {
  return integratedAddressMaker(primaryAddress)(paymentId);
}

/**
 * `makeIntegratedAddress` for one primary address, decoded once: every
 * invoice needs an address of its own, and decoding the primary measured
 * about half the cost of building one.
 */
export function integratedAddressMaker(primaryAddress: string): (paymentId: Uint8Array) => string {
  const primary = decodeAddress(primaryAddress);
  if (primary.kind !== 'standard') {
    const message = `an integrated address needs a primary address, not a ${primary.kind}`;
    throw new AddressError('wrong_kind', message);
  }
  return (paymentId) => {
    checkLength('paymentId', paymentId, PAYMENT_ID_BYTES);
    return encodeAddress({ ...primary, kind: 'integrated', paymentId });
  };
}

/** True for exactly 16 hex digits, the text form of an 8-byte payment id. */
export function isPaymentIdHex(s: string): boolean {
  return /^[0-9a-fA-F]{16}$/.test(s);
}

export function networkOfAddress(address: string): MoneroNetwork {
  return decodeAddress(address).network;
}

function decodeAddressBytes(address: string): Uint8Array {
  if (typeof address !== 'string' || !ADDRESS_LENGTHS.has(address.length)) {
    const length = typeof address === 'string' ? address.length : typeof address;
    throw new AddressError('bad_length', `address length ${length} is not that of any address`);
  }

  let bytes: Uint8Array;
  try {
    bytes = decodeBase58(address);
  } catch (err) {
    if (!(err instanceof Base58Error)) throw err;
    const reason = err.reason === 'block_overflow' ? 'bad_encoding' : err.reason;
    throw new AddressError(reason, `address is not valid base58: ${err.message}`);
  }
  return bytes;
}

function readPrefix(body: Uint8Array): { value: number; length: number } {
  let value = 0;
  for (let i = 0; i < MAX_PREFIX_BYTES && i < body.length; i++) {
    const byte = body[i] as number;
    // A zero high group after the first byte is a non-canonical varint;
    // Monero rejects it, so the same prefix has exactly one spelling.
    if (i > 0 && byte === 0) break;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
  }
  throw new AddressError('unknown_prefix', 'address prefix is not a valid varint');
}

function encodeVarint(value: number): Uint8Array {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Uint8Array.from(out);
}

function checksumOf(body: Uint8Array): Uint8Array {
  return keccak_256(body).subarray(0, CHECKSUM_BYTES);
}

function checkLength(name: string, value: Uint8Array | undefined, bytes: number): void {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array of ${bytes} bytes`);
  }
  if (value.length !== bytes) {
    throw new RangeError(`${name} must be ${bytes} bytes, got ${value.length}`);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
