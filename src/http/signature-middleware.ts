import type { MiddlewareHandler } from 'hono';

import type { SignatureVerifier } from '../merchants/signature-verifier.js';

/** What `requireSignature` puts on the context for the handlers after it. */
export type SignatureVariables = {
  /** The merchant whose key signed the request. */
  merchantId: string;
  /** The key id the signature named; tells apart a merchant's rotated keys. */
  keyId: string;
};

// Lets handlers on an app typed without these variables read them too; they
// are set only behind requireSignature.
declare module 'hono' {
  interface ContextVariableMap extends SignatureVariables {}
}

/**
 * Refuses a request unless it carries a valid merchant signature (RFC 9421).
 * The body is read here to check its digest; hono keeps it, so handlers can
 * still call `c.req.json()` or `c.req.text()`. A refusal is thrown as an
 * AuthError for the app's error boundary to answer.
 */
export function requireSignature(
  verifier: Pick<SignatureVerifier, 'verify'>,
): MiddlewareHandler<{ Variables: SignatureVariables }> {
  return async function signatureCheck(c, next) {
    const body = new Uint8Array(await c.req.arrayBuffer());
    const url = new URL(c.req.url);
    const signer = await verifier.verify({
      method: c.req.method,
      headers: c.req.raw.headers,
      body,
      pathAndQuery: `${url.pathname}${url.search}`,
    });

    c.set('merchantId', signer.merchantId);
    c.set('keyId', signer.keyId);
    await next();
  };
}
