import { createHash, sign, type KeyObject } from 'node:crypto';

import { serializeInnerList, type BareItem, type Item } from 'structured-headers';

import { buildSignatureBase } from '../../src/merchants/http-signature.js';

export type SignRequestOptions = {
  method: string;
  url: string | URL;
  /** Headers the request will carry; covered fields are read from here. */
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  privateKey: KeyObject;
  /** `null` leaves the keyid parameter out. */
  keyId: string | null;
  /** Unix seconds; defaults to now, `null` leaves the parameter out. */
  created?: number | null;
  expires?: number;
  /** RFC 9421 `nonce`: makes two otherwise identical requests distinct. */
  nonce?: string;
  /** Defaults to `ed25519`; `null` leaves the parameter out. */
  alg?: string | null;
  /** Covered components; defaults to @method, @target-uri and, with a body, content-digest. */
  components?: string[];
  /** Content-Digest algorithm; `none` adds no Content-Digest header. */
  digest?: 'sha-256' | 'sha-512' | 'none';
  label?: string;
};

/**
 * The project's test signer: signs a request as a merchant would (RFC 9421,
 * ed25519) and returns the headers to add to it. The target URI is taken
 * from `url`, so its host must be the Host header the server will see.
 */
export function signRequest(options: SignRequestOptions): Record<string, string> {
  const url = new URL(options.url);
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
  const headers = new Headers(options.headers);
  const added: Record<string, string> = {};

  const digest = options.digest ?? 'sha-256';
  if (body !== undefined && body.byteLength > 0 && digest !== 'none') {
    added['content-digest'] = contentDigest(body, digest);
    headers.set('content-digest', added['content-digest']);
  }

  const components = options.components ?? defaultComponents(body);
  const params = serializeInnerList([
    components.map((name): Item => [name, new Map()]),
    signatureParams(options),
  ]);
  const base = buildSignatureBase(
    { components, params },
    {
      method: options.method,
      scheme: url.protocol.slice(0, -1),
      authority: url.host,
      pathAndQuery: `${url.pathname}${url.search}`,
      headers,
    },
  );

  const label = options.label ?? 'sig1';
  const signature = sign(null, Buffer.from(base), options.privateKey);
  added['signature-input'] = `${label}=${params}`;
  added['signature'] = `${label}=:${signature.toString('base64')}:`;
  return added;
}

/** A Content-Digest field value (RFC 9530) for the given body. */
export function contentDigest(body: Uint8Array | string, algorithm: 'sha-256' | 'sha-512'): string {
  const hash = createHash(algorithm === 'sha-256' ? 'sha256' : 'sha512');
  return `${algorithm}=:${hash.update(body).digest('base64')}:`;
}

function defaultComponents(body: Uint8Array | undefined): string[] {
  const components = ['@method', '@target-uri'];
  if (body !== undefined && body.byteLength > 0) components.push('content-digest');
  return components;
}

function signatureParams(options: SignRequestOptions): Map<string, BareItem> {
  const params = new Map<string, BareItem>();
  const created = options.created === undefined ? Math.floor(Date.now() / 1000) : options.created;
  if (created !== null) params.set('created', created);
  if (options.expires !== undefined) params.set('expires', options.expires);
  if (options.nonce !== undefined) params.set('nonce', options.nonce);
  if (options.keyId !== null) params.set('keyid', options.keyId);
  const alg = options.alg === undefined ? 'ed25519' : options.alg;
  if (alg !== null) params.set('alg', alg);
  return params;
}
