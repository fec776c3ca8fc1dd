import { createHash, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

/**
 * Worker handler: checks a batch of request signatures. Each item carries
 * the signature base the main thread built, the raw ed25519 signature, the
 * merchant's raw public key and, for a request with a body, the body and the
 * digests its Content-Digest header claims. One answer per item, in order.
 */

export type DigestCheck = { algorithm: 'sha256' | 'sha512'; value: Uint8Array };

export type VerifyItem = {
  /** RFC 9421 signature base; ASCII, checked on the main thread. */
  base: string;
  signature: Uint8Array;
  keyId: string;
  /** Raw 32-byte ed25519 public key. */
  publicKey: Uint8Array;
  body: Uint8Array;
  /** Digests the body must match; empty when nothing is claimed about it. */
  digests: DigestCheck[];
};

export type VerifyOutcome = 'ok' | 'digest_mismatch' | 'signature_invalid' | 'key_unusable';

/**
 * Parsed keys stay cached in each worker rather than imported per request.
 * Import from JWK measured about a tenth of the cost of import from DER, and
 * still about a seventh of a verify. Keyed by key id and key bytes, so a key
 * id registered again with new bytes is imported afresh; bounded, oldest out.
 */
const KEY_CACHE_LIMIT = 10_000;
const keyCache = new Map<string, KeyObject>();

export default function verifySignatures(items: VerifyItem[]): VerifyOutcome[] {
  return items.map(verifyItem);
}

function verifyItem(item: VerifyItem): VerifyOutcome {
  if (!digestsMatch(item.body, item.digests)) return 'digest_mismatch';

  const key = publicKeyFor(item.keyId, item.publicKey);
  if (key === undefined) return 'key_unusable';

  try {
    const valid = verify(null, Buffer.from(item.base, 'latin1'), key, item.signature);
    return valid ? 'ok' : 'signature_invalid';
  } catch {
    return 'signature_invalid';
  }
}

function digestsMatch(body: Uint8Array, digests: DigestCheck[]): boolean {
  for (const { algorithm, value } of digests) {
    const actual = createHash(algorithm).update(body).digest();
    if (actual.byteLength !== value.byteLength || !timingSafeEqual(actual, value)) return false;
  }
  return true;
}

function publicKeyFor(keyId: string, raw: Uint8Array): KeyObject | undefined {
  const x = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  const cacheKey = `${keyId}\n${x}`;
  const cached = keyCache.get(cacheKey);
  if (cached !== undefined) return cached;

  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  } catch {
    return undefined;
  }
  if (keyCache.size >= KEY_CACHE_LIMIT) {
    const oldest = keyCache.keys().next();
    if (!oldest.done) keyCache.delete(oldest.value);
  }
  keyCache.set(cacheKey, key);
  return key;
}
