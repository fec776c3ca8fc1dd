import { createHmac, hash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { KeyedHash } from './keyed-hash.js';

/** A payment id's tag, and the first half of its token. */
const TAG_BYTES = 16;
/** The token's second half. */
const TOKEN_MAC_BYTES = 16;

/**
 * Keyed derivations from the server secret, which lives in its own file and
 * never in the database: a stolen database holds neither payment ids nor
 * tokens, only keyed hashes of them.
 */
export class Secrets {
  readonly #pidTagKey: Buffer;
  readonly #pidTag: (pid: Buffer) => Buffer;
  readonly #tokenKey: KeyedHash;

  constructor(master: Buffer) {
    if (master.length < 32) throw new RangeError('secret must be at least 32 bytes');
    this.#pidTagKey = createHmac('sha256', master).update('stronghold pid tag v1').digest();
    const tokenKey = createHmac('sha256', master).update('stronghold token v2').digest();
    this.#pidTag = pidTagger(this.#pidTagKey);
    this.#tokenKey = new KeyedHash(tokenKey);
  }

  /** The 16-byte tag under which a payment id is stored and indexed. */
  pidTag(pid: Buffer): Buffer {
    return this.#pidTag(pid);
  }

  /**
   * A copy of the key payment id tags are made with, for a worker thread
   * that tags the transfers it reads (pidTagger). A method, not a field,
   * so that the key is not among the properties a logger would print.
   */
  pidTagKey(): Buffer {
    return Buffer.from(this.#pidTagKey);
  }

  /**
   * The service token for a payment id, as 64 hex digits: the id's tag,
   * then 16 bytes of a MAC that only the secret can make. The tag finds
   * the ticket through the tickets table's one unique index; the stored
   * hash of the whole token then decides. A second unique index, on the
   * token hash, cost half of every claim's SQLite time (bench/README.md,
   * redeem-claim).
   */
  token(pid: Buffer, tag: Buffer = this.pidTag(pid)): string {
    return tag.toString('hex') + this.#tokenKey.digest(pid).toString('hex', 0, TOKEN_MAC_BYTES);
  }
}

/** Makes payment id tags with a key from Secrets.pidTagKey(). */
export function pidTagger(key: Uint8Array): (pid: Buffer) => Buffer {
  const keyed = new KeyedHash(Buffer.from(key));
  return (pid) => keyed.digest(pid).subarray(0, TAG_BYTES);
}

/** The payment id tag a token starts with; the token must be 64 hex digits. */
export function tagOfToken(token: string): Buffer {
  return Buffer.from(token.slice(0, 2 * TAG_BYTES), 'hex');
}

/** What the database stores for a token: its SHA-256. */
export function tokenHash(token: string): Buffer {
  return hash('sha256', Buffer.from(token, 'latin1'), 'buffer');
}

/** Reads the secret file, creating it (mode 0600) on first start. */
export function loadSecret(file: string): Secrets {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  }
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64,}$/.test(text)) {
    throw new RangeError(`secret file ${file} must hold at least 64 hex digits`);
  }
  return new Secrets(Buffer.from(text, 'hex'));
}
