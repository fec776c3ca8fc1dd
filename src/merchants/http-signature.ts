import {
  isInnerList,
  parseDictionary,
  serializeParameters,
  type BareItem,
  type Dictionary,
  type InnerList,
  type Item,
  type Parameters,
} from 'structured-headers';

import { AuthError } from '../errors.js';

/**
 * RFC 9421 HTTP Message Signatures, the parts that need no crypto: reading
 * the Signature and Signature-Input fields, checking what a signature covers
 * and building the signature base. All of it runs on the main thread; the
 * signature check itself happens in a worker.
 */

/** Derived components a request signature may cover here (RFC 9421 §2.2). */
const DERIVED_COMPONENTS = new Set([
  '@method',
  '@target-uri',
  '@authority',
  '@scheme',
  '@request-target',
  '@path',
  '@query',
]);

/** Raw length of an ed25519 signature (RFC 8032 §5.1.6). */
const ED25519_SIGNATURE_BYTES = 64;

/** Digest algorithms accepted in Content-Digest (RFC 9530 §5), with their lengths. */
const DIGEST_ALGORITHMS = new Map<string, { algorithm: DigestAlgorithm; bytes: number }>([
  ['sha-256', { algorithm: 'sha256', bytes: 32 }],
  ['sha-512', { algorithm: 'sha512', bytes: 64 }],
]);

export type DigestAlgorithm = 'sha256' | 'sha512';

/** One digest the body must match, as a Node hash name and the expected bytes. */
export type DigestCheck = { algorithm: DigestAlgorithm; value: Uint8Array };

/** What a signature base is built from: the request as the signer saw it. */
export type SignedMessage = {
  method: string;
  /** Lowercase scheme of the target URI. */
  scheme: string;
  /** Normalized authority (see `authorityOf`). */
  authority: string;
  /** Origin-form request target: the path, then `?` and the query if any. */
  pathAndQuery: string;
  headers: Headers;
};

/** One signature read from the Signature and Signature-Input fields. */
export type ParsedSignature = {
  label: string;
  /** Covered component identifiers, in the signer's order. */
  components: string[];
  /** The `@signature-params` value: the serialized inner list and its parameters. */
  params: string;
  created: number | undefined;
  expires: number | undefined;
  keyId: string | undefined;
  alg: string | undefined;
  signature: Uint8Array;
};

/** A signature whose covered components and parameters are acceptable. */
export type CoveredSignature = ParsedSignature & { created: number; keyId: string };

function malformed(message: string): AuthError {
  return new AuthError('signature_malformed', message);
}

function uncovered(message: string): AuthError {
  return new AuthError('signature_components', message);
}

/**
 * Reads the first signature named in Signature-Input and its value from
 * Signature. A request carries one signature from its merchant; further
 * labels (none are expected over Tor, where no proxy adds its own) are ignored.
 */
export function parseSignature(headers: Headers): ParsedSignature {
  const inputField = headers.get('signature-input');
  const signatureField = headers.get('signature');
  if (inputField === null || signatureField === null) {
    throw new AuthError(
      'signature_missing',
      'merchant routes need an RFC 9421 signature in the Signature and Signature-Input headers',
    );
  }

  const inputs = parseField(inputField, 'Signature-Input');
  const first = inputs.entries().next();
  if (first.done) throw malformed('the Signature-Input header names no signature');
  const [label, member] = first.value;
  if (!isInnerList(member)) {
    throw malformed('a Signature-Input member must be an inner list of components');
  }

  const signature = signatureBytes(parseField(signatureField, 'Signature').get(label));
  const [items, parameters] = member;
  return {
    label,
    components: readComponents(items),
    params: serializeParams(member),
    ...readParameters(parameters),
    signature,
  };
}

function parseField(value: string, name: string): Dictionary {
  try {
    return parseDictionary(value);
  } catch {
    throw malformed(`the ${name} header is not a structured-field dictionary`);
  }
}

function signatureBytes(member: Item | InnerList | undefined): Uint8Array {
  if (member === undefined) {
    throw malformed('the Signature header has no value for the signature in Signature-Input');
  }
  const value = member[0];
  if (!(value instanceof ArrayBuffer)) {
    throw malformed('a Signature member must be a byte sequence');
  }
  if (value.byteLength !== ED25519_SIGNATURE_BYTES) {
    throw malformed(`an ed25519 signature is ${ED25519_SIGNATURE_BYTES} bytes`);
  }
  return new Uint8Array(value);
}

function readComponents(items: Item[]): string[] {
  const components: string[] = [];
  for (const [name, parameters] of items) {
    if (typeof name !== 'string') throw malformed('covered components must be strings');
    if (name !== name.toLowerCase()) throw malformed('component identifiers must be lowercase');
    if (name === '@signature-params') throw malformed('@signature-params cannot be covered');
    if (components.includes(name)) throw malformed('a component is covered twice');
    if (parameters.size > 0) throw uncovered('component parameters are not supported');
    if (name.startsWith('@') && !DERIVED_COMPONENTS.has(name)) {
      throw uncovered(`the derived component ${name} is not supported`);
    }
    components.push(name);
  }
  return components;
}

function readParameters(parameters: Parameters): {
  created: number | undefined;
  expires: number | undefined;
  keyId: string | undefined;
  alg: string | undefined;
} {
  return {
    created: integerParam(parameters.get('created'), 'created'),
    expires: integerParam(parameters.get('expires'), 'expires'),
    keyId: stringParam(parameters.get('keyid'), 'keyid'),
    alg: stringParam(parameters.get('alg'), 'alg'),
  };
}

function integerParam(value: BareItem | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw malformed(`the ${name} parameter must be an integer`);
  }
  return value;
}

function stringParam(value: BareItem | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw malformed(`the ${name} parameter must be a string`);
  return value;
}

/**
 * The `@signature-params` value (RFC 9421 §2.3). Structured fields have one
 * canonical serialization, so re-serializing what was parsed gives back what
 * a conforming signer sent. Strings and integers, all that RFC 9421 defines
 * for its parameters, are written directly: the parser has already checked
 * them, and the library serializer re-checks every character, which measured
 * as the largest main-thread cost of a verify.
 */
function serializeParams([items, parameters]: InnerList): string {
  let params = '';
  for (const [key, value] of parameters) {
    if (typeof value === 'string') params += `;${key}=${quote(value)}`;
    else if (Number.isSafeInteger(value)) params += `;${key}=${value as number}`;
    else params += serializeLibraryParam(key, value);
  }
  return `(${items.map(([name]) => quote(name as string)).join(' ')})${params}`;
}

function serializeLibraryParam(key: string, value: BareItem): string {
  try {
    return serializeParameters(new Map([[key, value]]));
  } catch {
    throw malformed('the signature parameters cannot be serialized');
  }
}

/** An sf-string (RFC 8941 §3.3.3) from text that is printable ASCII, as parsed strings are. */
function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * Refuses a signature that does not cover what this service requires: the
 * method, the target, the body's digest when there is a body, and the
 * `created` and `keyid` parameters. `alg`, when given, must be ed25519.
 */
export function requireCoverage(parsed: ParsedSignature, hasBody: boolean): CoveredSignature {
  const { components, created, keyId, alg } = parsed;
  if (created === undefined) throw uncovered('the signature has no created parameter');
  if (keyId === undefined) throw uncovered('the signature has no keyid parameter');
  if (alg !== undefined && alg !== 'ed25519') throw uncovered('the only accepted alg is ed25519');
  if (!components.includes('@method')) throw uncovered('the signature must cover @method');

  const coversTarget =
    components.includes('@target-uri') ||
    (components.includes('@path') && components.includes('@authority'));
  if (!coversTarget) {
    throw uncovered('the signature must cover @target-uri, or both @path and @authority');
  }
  if (hasBody && !components.includes('content-digest')) {
    throw uncovered('a request with a body must have content-digest covered');
  }
  return { ...parsed, created, keyId };
}

/**
 * The signature base (RFC 9421 §2.5): one line per covered component, then
 * the `@signature-params` line. It must be ASCII; a covered component that
 * the request lacks fails the whole signature.
 */
export function buildSignatureBase(
  signature: Pick<ParsedSignature, 'components' | 'params'>,
  message: SignedMessage,
): string {
  const lines = signature.components.map(
    (name) => `${quote(name)}: ${componentValue(name, message)}`,
  );
  lines.push(`"@signature-params": ${signature.params}`);
  const base = lines.join('\n');

  if (!/^[\x00-\x7f]*$/.test(base)) throw malformed('covered components must be ASCII');
  return base;
}

function componentValue(name: string, message: SignedMessage): string {
  const queryAt = message.pathAndQuery.indexOf('?');
  const path = queryAt === -1 ? message.pathAndQuery : message.pathAndQuery.slice(0, queryAt);
  switch (name) {
    case '@method':
      return message.method;
    case '@target-uri':
      return `${message.scheme}://${message.authority}${message.pathAndQuery}`;
    case '@authority':
      return message.authority;
    case '@scheme':
      return message.scheme;
    case '@request-target':
      return message.pathAndQuery;
    case '@path':
      return path === '' ? '/' : path;
    case '@query':
      return queryAt === -1 ? '?' : message.pathAndQuery.slice(queryAt);
    default:
      return headerValue(name, message.headers);
  }
}

function headerValue(name: string, headers: Headers): string {
  let value: string | null;
  try {
    value = headers.get(name);
  } catch {
    value = null;
  }
  if (value === null) throw uncovered(`the covered field ${name} is not in the request`);
  return value;
}

/**
 * The authority of the target URI rebuilt from the Host header, normalized
 * as RFC 9110 §4.2.3 asks: lowercase host, no default port.
 */
export function authorityOf(host: string | null, scheme: string): string {
  if (host === null || host === '' || /[\s/?#@\\]/.test(host)) {
    throw malformed('the Host header is missing or not a valid authority');
  }
  try {
    return new URL(`${scheme}://${host}`).host;
  } catch {
    throw malformed('the Host header is missing or not a valid authority');
  }
}

/**
 * Reads Content-Digest (RFC 9530 §2). Every sha-256 and sha-512 digest given
 * must match the body; other algorithms are ignored, and a field that has
 * neither cannot vouch for the body.
 */
export function parseContentDigest(field: string): DigestCheck[] {
  let members: Dictionary;
  try {
    members = parseDictionary(field);
  } catch {
    throw new AuthError('digest_mismatch', 'the Content-Digest header cannot be parsed');
  }

  const checks: DigestCheck[] = [];
  for (const [key, member] of members) {
    const known = DIGEST_ALGORITHMS.get(key);
    if (known === undefined) continue;
    const value = member[0];
    if (!(value instanceof ArrayBuffer) || value.byteLength !== known.bytes) {
      throw new AuthError(
        'digest_mismatch',
        `the ${key} digest is not a ${known.bytes}-byte value`,
      );
    }
    checks.push({ algorithm: known.algorithm, value: new Uint8Array(value) });
  }
  if (checks.length === 0) {
    throw new AuthError('digest_mismatch', 'Content-Digest must carry a sha-256 or sha-512 digest');
  }
  return checks;
}
