import { createHash, type KeyObject, sign } from 'node:crypto';

import { buildSignatureBase } from '../src/merchants/http-signature.js';

const COMPONENTS = ['@method', '@target-uri', 'content-digest'];
const COVERED = `(${COMPONENTS.map((name) => `"${name}"`).join(' ')})`;

/**
 * Signs merchant requests (RFC 9421, ed25519) the way a merchant would, for
 * the load generator. The test suite has a fuller signer in
 * test/support/sign-request.ts that can also build malformed signatures;
 * this one does only the valid case, fast, and shares the signature base
 * with the service by importing `buildSignatureBase` from src.
 */
export class RequestSigner {
  readonly #privateKey: KeyObject;
  readonly #keyId: string;

  constructor(privateKey: KeyObject, keyId: string) {
    if (!/^[\x20-\x7e]+$/.test(keyId) || /["\\]/.test(keyId)) {
      throw new RangeError('keyId must be printable ASCII without quotes or backslashes');
    }
    this.#privateKey = privateKey;
    this.#keyId = keyId;
  }

  /** The Content-Digest, Signature-Input and Signature headers for one request. */
  sign(method: string, url: URL, body: string): Record<string, string> {
    const digest = `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
    const created = Math.floor(Date.now() / 1000);
    const params = `${COVERED};created=${created};keyid="${this.#keyId}";alg="ed25519"`;
    const base = buildSignatureBase(
      { components: COMPONENTS, params },
      {
        method,
        scheme: url.protocol.slice(0, -1),
        authority: url.host,
        pathAndQuery: `${url.pathname}${url.search}`,
        headers: new Headers({ 'content-digest': digest }),
      },
    );
    const signature = sign(null, Buffer.from(base, 'latin1'), this.#privateKey);
    return {
      'content-digest': digest,
      'signature-input': `sig1=${params}`,
      signature: `sig1=:${signature.toString('base64')}:`,
    };
  }
}
