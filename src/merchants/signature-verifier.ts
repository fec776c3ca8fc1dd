import { AuthError, UnavailableError } from '../errors.js';
import type { WorkerPool } from '../work/worker-pool.js';
import type { VerifyItem, VerifyOutcome } from '../../workers/verify-signatures.js';
import {
  authorityOf,
  buildSignatureBase,
  parseContentDigest,
  parseSignature,
  requireCoverage,
  type CoveredSignature,
  type DigestCheck,
} from './http-signature.js';

/** A registered merchant key: who it belongs to and its raw 32-byte ed25519 public key. */
export type SignatureKey = { merchantId: string; publicKey: Uint8Array };

export type SignatureVerifierOptions = {
  pool: Pick<WorkerPool, 'verifySignatures'>;
  /** Seconds a signature's `created` may lie behind or ahead of now. */
  windowSeconds: number;
  lookupKey(keyId: string): SignatureKey | undefined;
  /** Scheme of the rebuilt target URI: onion services speak plain http. */
  scheme?: 'http' | 'https';
  /** Unix seconds. */
  now?: () => number;
  /** Most verified signatures remembered for replay checks. */
  replayCapacity?: number;
};

/** What the verifier needs of a request. */
export type SignedRequest = {
  method: string;
  headers: Headers;
  body: Uint8Array;
  /** Path and query exactly as in the request target, e.g. `/api/v1/invoices?limit=5`. */
  pathAndQuery: string;
};

export type VerifiedSigner = { merchantId: string; keyId: string };

const DEFAULTS = {
  scheme: 'http',
  /** Entries; each costs roughly 200 bytes. */
  replayCapacity: 200_000,
} as const;

/**
 * Checks merchant request signatures (RFC 9421, ed25519). Parsing, coverage,
 * time window and key lookup happen here on the main thread; the body digest
 * and the signature itself are checked in the worker pool. A signature is
 * remembered only once it has verified, so forged requests cannot fill the
 * replay set.
 */
export class SignatureVerifier {
  readonly #pool: Pick<WorkerPool, 'verifySignatures'>;
  readonly #windowSeconds: number;
  readonly #lookupKey: (keyId: string) => SignatureKey | undefined;
  readonly #scheme: string;
  readonly #now: () => number;
  readonly #seen: SeenSignatures;

  constructor(options: SignatureVerifierOptions) {
    const { windowSeconds, scheme = DEFAULTS.scheme } = options;
    const replayCapacity = options.replayCapacity ?? DEFAULTS.replayCapacity;
    checkInteger('windowSeconds', windowSeconds, 1, 86_400);
    checkInteger('replayCapacity', replayCapacity, 1, 100_000_000);
    if (scheme !== 'http' && scheme !== 'https') {
      throw new RangeError(`scheme must be http or https, got ${String(scheme)}`);
    }

    this.#pool = options.pool;
    this.#windowSeconds = windowSeconds;
    this.#lookupKey = options.lookupKey;
    this.#scheme = scheme;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#seen = new SeenSignatures(replayCapacity);
  }

  /**
   * Resolves to the signing merchant, or rejects with an AuthError whose code
   * names the failed check (UnavailableError `overloaded` when saturated).
   */
  async verify(request: SignedRequest): Promise<VerifiedSigner> {
    const { signature, item, merchantId } = this.#prepare(request);
    const replayId = Buffer.from(signature.signature).toString('base64');
    if (this.#seen.has(replayId, this.#now())) throw replayed();

    const [outcome] = await this.#pool.verifySignatures([item]);
    failUnlessOk(outcome);

    // Checked again: an identical request may have verified while this one
    // was in the pool, and only one of them may pass.
    const now = this.#now();
    if (this.#seen.has(replayId, now)) throw replayed();
    this.#seen.record(replayId, this.#replayableUntil(signature), now);
    return { merchantId, keyId: signature.keyId };
  }

  /** Every check that needs no crypto, then the work item for the pool. */
  #prepare(request: SignedRequest): {
    signature: CoveredSignature;
    item: VerifyItem;
    merchantId: string;
  } {
    const { headers, body } = request;
    const parsed = parseSignature(headers);
    const digestField = headers.get('content-digest');
    if (body.byteLength > 0 && digestField === null) {
      throw new AuthError('digest_mismatch', 'a request with a body needs a Content-Digest header');
    }
    const signature = requireCoverage(parsed, body.byteLength > 0);
    this.#checkWindow(signature);

    const key = this.#lookupKey(signature.keyId);
    if (key === undefined) {
      throw new AuthError('unknown_key', 'the signature names a key that is not registered');
    }
    const digests = digestField === null ? [] : parseContentDigest(digestField);
    const base = buildSignatureBase(signature, {
      method: request.method,
      scheme: this.#scheme,
      authority: authorityOf(headers.get('host'), this.#scheme),
      pathAndQuery: request.pathAndQuery,
      headers,
    });

    const item = workItem(base, signature, key.publicKey, body, digests);
    return { signature, item, merchantId: key.merchantId };
  }

  #checkWindow(signature: CoveredSignature): void {
    const now = this.#now();
    if (Math.abs(now - signature.created) > this.#windowSeconds) {
      throw new AuthError(
        'signature_expired',
        `the signature's created time is more than ${this.#windowSeconds} seconds from now`,
      );
    }
    if (signature.expires !== undefined && signature.expires < now) {
      throw new AuthError('signature_expired', 'the signature has expired');
    }
  }

  /** The last second at which this signature would still pass the window checks. */
  #replayableUntil(signature: CoveredSignature): number {
    const windowEnd = signature.created + this.#windowSeconds;
    return signature.expires === undefined ? windowEnd : Math.min(windowEnd, signature.expires);
  }
}

function workItem(
  base: string,
  signature: CoveredSignature,
  publicKey: Uint8Array,
  body: Uint8Array,
  digests: DigestCheck[],
): VerifyItem {
  // Structured clone copies a view's whole ArrayBuffer, and small Buffers
  // are slices of an 8 KiB pool: hand the worker compact copies.
  return {
    base,
    signature: compact(signature.signature),
    keyId: signature.keyId,
    publicKey: compact(publicKey),
    body: digests.length === 0 ? new Uint8Array(0) : compact(body),
    digests,
  };
}

function compact(bytes: Uint8Array): Uint8Array {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole ? bytes : bytes.slice();
}

function failUnlessOk(outcome: VerifyOutcome | undefined): void {
  switch (outcome) {
    case 'ok':
      return;
    case 'digest_mismatch':
      throw new AuthError('digest_mismatch', 'the Content-Digest header does not match the body');
    case 'key_unusable':
      throw new AuthError('unknown_key', 'the key registered under this key id is not usable');
    default:
      throw new AuthError('signature_invalid', 'the signature does not verify');
  }
}

function replayed(): AuthError {
  return new AuthError('signature_replayed', 'this signature has been used already');
}

/**
 * Verified signatures still inside their window, each with the last second
 * it could be replayed. Bounded: when full of live entries it refuses new
 * ones (503) rather than forget a live one, which would reopen a replay.
 */
class SeenSignatures {
  readonly #capacity: number;
  readonly #until = new Map<string, number>();
  #sweptAt = Number.NEGATIVE_INFINITY;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  has(id: string, now: number): boolean {
    const until = this.#until.get(id);
    return until !== undefined && until >= now;
  }

  record(id: string, until: number, now: number): void {
    this.#dropExpiredHead(now);
    if (this.#until.size >= this.#capacity && this.#sweptAt < now) {
      this.#sweptAt = now;
      for (const [key, last] of this.#until) if (last < now) this.#until.delete(key);
    }
    if (this.#until.size >= this.#capacity) {
      throw new UnavailableError(
        'too many signed requests inside the replay window; retry shortly',
        'overloaded',
      );
    }
    this.#until.set(id, until);
  }

  /**
   * Entries arrive roughly in `created` order, so expired ones gather at the
   * front of the map; the full sweep above (at most once a second) catches
   * the rest when the set is full.
   */
  #dropExpiredHead(now: number): void {
    for (const [key, last] of this.#until) {
      if (last >= now) return;
      this.#until.delete(key);
    }
  }
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  }
}
