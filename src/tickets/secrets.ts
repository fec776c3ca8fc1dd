import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Keyed derivations from the server secret, which lives in its own file and
 * never in the database: a stolen database holds neither payment ids nor
 * tokens, only keyed hashes of them.
 */
export class Secrets {
  readonly #pidKey: Buffer;
  readonly #tokenKey: Buffer;

  constructor(master: Buffer) {
    if (master.length < 32) throw new RangeError('secret must be at least 32 bytes');
    this.#pidKey = createHmac('sha256', master).update('stronghold pid tag v1').digest();
    this.#tokenKey = createHmac('sha256', master).update('stronghold token v1').digest();
  }

  /** The 16-byte tag under which a payment id is stored and indexed. */
  pidTag(pid: Buffer): Buffer {
    return createHmac('sha256', this.#pidKey).update(pid).digest().subarray(0, 16);
  }

  /** The service token for a payment id, as 64 hex digits. */
  token(pid: Buffer): string {
    return createHmac('sha256', this.#tokenKey).update(pid).digest('hex');
  }
}

/** What the database stores for a token: its SHA-256. */
export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'latin1').digest();
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
