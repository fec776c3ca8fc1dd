/**
 * Monero's base58, which is not Bitcoin's: the input is cut into 8-byte
 * blocks, each encoded on its own to exactly 11 characters, and a final
 * short block to a fixed width taken from a size table. Fixed widths keep
 * every address of one kind the same length, so no leading-zero rule exists.
 */

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const BASE = 58n;
const FULL_BLOCK_BYTES = 8;
const FULL_BLOCK_CHARS = 11;

/** Encoded width of a block, indexed by its length in bytes (0 to 8). */
const ENCODED_WIDTH = [0, 2, 3, 5, 6, 7, 9, 10, 11] as const;

const DIGIT_OF = new Map<string, bigint>(
  [...ALPHABET].map((char, index) => [char, BigInt(index)]),
);

/** Why a string could not be decoded; lets callers report the rule broken. */
export type Base58Failure = 'bad_character' | 'bad_length' | 'block_overflow';

export class Base58Error extends Error {
  readonly code = 'invalid_base58';
  readonly reason: Base58Failure;

  constructor(reason: Base58Failure, message: string) {
    super(message);
    this.name = 'Base58Error';
    this.reason = reason;
  }
}

/** Length of the base58 text for `byteCount` bytes; fixed, as no leading zeros are dropped. */
export function encodedLength(byteCount: number): number {
  const tail = ENCODED_WIDTH[byteCount % FULL_BLOCK_BYTES] as number;
  return Math.floor(byteCount / FULL_BLOCK_BYTES) * FULL_BLOCK_CHARS + tail;
}

export function encodeBase58(data: Uint8Array): string {
  let out = '';
  for (let start = 0; start < data.length; start += FULL_BLOCK_BYTES) {
    out += encodeBlock(data.subarray(start, start + FULL_BLOCK_BYTES));
  }
  return out;
}

/**
 * Throws `Base58Error` on a character outside the alphabet, a last block
 * whose width is not in the table, or a block too large for its width.
 */
export function decodeBase58(text: string): Uint8Array {
  const fullBlocks = Math.floor(text.length / FULL_BLOCK_CHARS);
  const tailChars = text.length % FULL_BLOCK_CHARS;
  const tailBytes = ENCODED_WIDTH.indexOf(tailChars as (typeof ENCODED_WIDTH)[number]);
  if (tailBytes < 0) {
    const message = `base58 text of ${text.length} chars has no valid last block`;
    throw new Base58Error('bad_length', message);
  }

  const out = new Uint8Array(fullBlocks * FULL_BLOCK_BYTES + tailBytes);
  for (let block = 0; block * FULL_BLOCK_CHARS < text.length; block++) {
    const chunk = text.slice(block * FULL_BLOCK_CHARS, (block + 1) * FULL_BLOCK_CHARS);
    const size = chunk.length === FULL_BLOCK_CHARS ? FULL_BLOCK_BYTES : tailBytes;
    out.set(decodeBlock(chunk, size), block * FULL_BLOCK_BYTES);
  }
  return out;
}

function encodeBlock(block: Uint8Array): string {
  let value = 0n;
  for (const byte of block) value = (value << 8n) | BigInt(byte);

  const width = ENCODED_WIDTH[block.length] ?? FULL_BLOCK_CHARS;
  const chars = new Array<string>(width).fill(ALPHABET[0] as string);
  for (let i = width - 1; value > 0n; i--) {
    chars[i] = ALPHABET[Number(value % BASE)] as string;
    value /= BASE;
  }
  return chars.join('');
}

function decodeBlock(chunk: string, size: number): Uint8Array {
  let value = 0n;
  for (const char of chunk) {
    const digit = DIGIT_OF.get(char);
    if (digit === undefined) {
      throw new Base58Error('bad_character', 'base58 text has a character outside the alphabet');
    }
    value = value * BASE + digit;
  }

  // Eleven base58 digits can exceed 2^64, and a short block's width can
  // exceed its byte count; either means the text was not produced by encode.
  if (value >> BigInt(size * 8) !== 0n) {
    throw new Base58Error('block_overflow', 'base58 block holds more bytes than its width allows');
  }

  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}
