import { randomBytes } from 'node:crypto';

import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import { randomId } from '../ids.js';
import type { Db } from '../storage/database.js';

export type NewMerchant = {
  name?: unknown;
  public_key?: unknown;
  webhook_url?: unknown;
  webhook_secret?: unknown;
};

export type MerchantKey = { key_id: string; created_at: number; revoked_at: number | null };

export type Merchant = {
  id: string;
  name: string;
  webhook_url: string;
  created_at: number;
  disabled_at: number | null;
  keys: MerchantKey[];
};

/** Merchants, their Ed25519 keys and webhook settings. */
export class MerchantStore {
  readonly #db: Db;
  readonly #insertMerchant;
  readonly #insertKey;
  readonly #byId;
  readonly #all;
  readonly #keysOf;
  readonly #lookupKey;
  readonly #disable;
  readonly #revokeKey;

  constructor(db: Db) {
    this.#db = db;
    this.#insertMerchant = db.prepare(
      `INSERT INTO merchants (id, name, webhook_url, webhook_secret, created_at)
       VALUES (?, ?, ?, ?, ?)`,
    );
    this.#insertKey = db.prepare(
      'INSERT INTO merchant_keys (key_id, merchant_id, public_key, created_at) VALUES (?, ?, ?, ?)',
    );
    this.#byId = db.prepare('SELECT id, name, webhook_url, created_at, disabled_at FROM merchants WHERE id = ?');
    this.#all = db.prepare('SELECT id, name, webhook_url, created_at, disabled_at FROM merchants ORDER BY created_at, id');
    this.#keysOf = db.prepare(
      'SELECT key_id, created_at, revoked_at FROM merchant_keys WHERE merchant_id = ? ORDER BY created_at, key_id',
    );
    this.#lookupKey = db.prepare(
      `SELECT k.merchant_id, k.public_key FROM merchant_keys k JOIN merchants m ON m.id = k.merchant_id
       WHERE k.key_id = ? AND k.revoked_at IS NULL AND m.disabled_at IS NULL`,
    );
    this.#disable = db.prepare('UPDATE merchants SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?');
    this.#revokeKey = db.prepare(
      'UPDATE merchant_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ? AND merchant_id = ?',
    );
  }

  add(input: NewMerchant, now: number): { id: string; key_id: string; webhook_secret: string } {
    const name = checkName(input.name);
    const publicKey = parsePublicKey(input.public_key);
    const webhookUrl = checkWebhookUrl(input.webhook_url);
    const secret = checkSecret(input.webhook_secret) ?? randomBytes(32).toString('base64url');
    const id = randomId('m', 12);
    const keyId = randomId('k', 12);

    this.#db.transaction(() => {
      this.#insertMerchant.run(id, name, webhookUrl, secret, now);
      this.#insertKey.run(keyId, id, publicKey, now);
    })();
    return { id, key_id: keyId, webhook_secret: secret };
  }

  /** Adds a key for rotation; the old keys keep working until revoked. */
  addKey(merchantId: string, publicKey: unknown, now: number): { key_id: string } {
    this.get(merchantId);
    const keyId = randomId('k', 12);
    this.#insertKey.run(keyId, merchantId, parsePublicKey(publicKey), now);
    return { key_id: keyId };
  }

  revokeKey(merchantId: string, keyId: string, now: number): Merchant {
    const merchant = this.get(merchantId);
    const live = merchant.keys.filter((k) => k.revoked_at === null && k.key_id !== keyId);
    if (!merchant.keys.some((k) => k.key_id === keyId)) throw new NotFoundError('unknown key');
    if (live.length === 0) throw new ConflictError('last_key', 'a merchant must keep one live key');
    this.#revokeKey.run(now, keyId, merchantId);
    return this.get(merchantId);
  }

  disable(merchantId: string, now: number): Merchant {
    this.get(merchantId);
    this.#disable.run(now, merchantId);
    return this.get(merchantId);
  }

  get(merchantId: string): Merchant {
    const row = this.#byId.get(merchantId) as Omit<Merchant, 'keys'> | undefined;
    if (!row) throw new NotFoundError('unknown merchant');
    return { ...row, keys: this.#keysOf.all(merchantId) as MerchantKey[] };
  }

  list(): Merchant[] {
    return (this.#all.all() as Omit<Merchant, 'keys'>[]).map((row) => ({
      ...row,
      keys: this.#keysOf.all(row.id) as MerchantKey[],
    }));
  }

  /** The live key a signature names, if its merchant is enabled. */
  lookupKey(keyId: string): { merchantId: string; publicKey: Uint8Array } | undefined {
    const row = this.#lookupKey.get(keyId) as { merchant_id: string; public_key: Buffer } | undefined;
    return row && { merchantId: row.merchant_id, publicKey: row.public_key };
  }
}

function checkName(value: unknown): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > 100) {
    throw new InvalidInputError('name must be a string of 1 to 100 characters');
  }
  return value.trim();
}

/** An Ed25519 public key as base64url of its raw 32 bytes. */
export function parsePublicKey(value: unknown): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{43}=?$/.test(value)) {
    throw new InvalidInputError('public_key must be base64url of a raw 32-byte Ed25519 key', 'invalid_public_key');
  }
  return Buffer.from(value, 'base64url');
}

function checkWebhookUrl(value: unknown): string {
  if (typeof value !== 'string' || value.length > 2048 || !URL.canParse(value)) {
    throw new InvalidInputError('webhook_url must be an absolute http(s) URL', 'invalid_webhook_url');
  }
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidInputError('webhook_url must be an absolute http(s) URL', 'invalid_webhook_url');
  }
  if (url.username || url.password) {
    throw new InvalidInputError('webhook_url must not carry credentials', 'invalid_webhook_url');
  }
  return url.toString();
}

function checkSecret(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length < 16 || value.length > 200) {
    throw new InvalidInputError('webhook_secret must be a string of 16 to 200 characters');
  }
  return value;
}
