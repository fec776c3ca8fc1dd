import { createHash, createPublicKey, verify } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { AuthError } from '../../src/errors.js';
import {
  authorityOf,
  buildSignatureBase,
  parseContentDigest,
  parseSignature,
  requireCoverage,
  type ParsedSignature,
  type SignedMessage,
} from '../../src/merchants/http-signature.js';

/** RFC 9421 Appendix B.1.4 test key (public half) and the B.2.6 example request. */
const RFC_PUBLIC_X = 'JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs';
const RFC_B26 = {
  input:
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")' +
    ';created=1618884473;keyid="test-key-ed25519"',
  signature:
    'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:',
  base: [
    '"date": Tue, 20 Apr 2021 02:07:55 GMT',
    '"@method": POST',
    '"@path": /foo',
    '"@authority": example.com',
    '"content-type": application/json',
    '"content-length": 18',
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length")' +
      ';created=1618884473;keyid="test-key-ed25519"',
  ].join('\n'),
};

function rfcRequestHeaders(): Headers {
  return new Headers({
    host: 'example.com',
    date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'content-type': 'application/json',
    'content-length': '18',
    'signature-input': RFC_B26.input,
    signature: RFC_B26.signature,
  });
}

const SIGNATURE_64 = `:${Buffer.alloc(64, 7).toString('base64')}:`;

function signatureHeaders(input: string, signature = `sig1=${SIGNATURE_64}`): Headers {
  return new Headers({ 'signature-input': input, signature });
}

function codeOf(action: () => unknown): string {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return (err as AuthError).code;
  }
  throw new Error('expected an AuthError');
}

function parsed(input: string): ParsedSignature {
  return parseSignature(signatureHeaders(input));
}

function message(pathAndQuery: string, headers = new Headers()): SignedMessage {
  return { method: 'GET', scheme: 'http', authority: 'shop.onion', pathAndQuery, headers };
}

describe('parseSignature', () => {
  it('reads the RFC 9421 B.2.6 example: label, components, parameters and signature', () => {
    const signature = parseSignature(rfcRequestHeaders());

    expect(signature.label).toBe('sig-b26');
    expect(signature.components).toEqual([
      'date',
      '@method',
      '@path',
      '@authority',
      'content-type',
      'content-length',
    ]);
    expect(signature.params).toBe(RFC_B26.input.slice('sig-b26='.length));
    expect(signature.created).toBe(1618884473);
    expect(signature.keyId).toBe('test-key-ed25519');
    expect(signature.alg).toBeUndefined();
    expect(signature.signature.byteLength).toBe(64);
  });

  it('refuses with signature_missing when there is no Signature-Input header', () => {
    const headers = new Headers({ signature: `sig1=${SIGNATURE_64}` });
    expect(codeOf(() => parseSignature(headers))).toBe('signature_missing');
  });

  it('refuses with signature_missing when there is no Signature header', () => {
    const headers = new Headers({ 'signature-input': 'sig1=("@method");created=1;keyid="k"' });
    expect(codeOf(() => parseSignature(headers))).toBe('signature_missing');
  });

  it.each([
    ['a Signature-Input that is not a dictionary', 'sig1=("@method"', undefined],
    ['a member that is not an inner list', 'sig1="@method"', undefined],
    ['no Signature value under the label', 'sig1=("@method")', `other=${SIGNATURE_64}`],
    ['a Signature value that is not a byte sequence', 'sig1=("@method")', 'sig1="abc"'],
    ['a signature that is not 64 bytes', 'sig1=("@method")', 'sig1=:AAAA:'],
    ['a created parameter that is not an integer', 'sig1=("@method");created="1"', undefined],
    ['a keyid parameter that is not a string', 'sig1=("@method");keyid=5', undefined],
    ['an uppercase component', 'sig1=("@method" "Content-Type")', undefined],
    ['a component covered twice', 'sig1=("@method" "@method")', undefined],
    ['a covered @signature-params', 'sig1=("@signature-params")', undefined],
    ['a component that is not a string', 'sig1=(method)', undefined],
  ])('refuses with signature_malformed: %s', (_, input, signature) => {
    expect(codeOf(() => parseSignature(signatureHeaders(input, signature)))).toBe(
      'signature_malformed',
    );
  });

  it.each([
    ['@query-param', 'sig1=("@query-param";name="a")'],
    ['@status', 'sig1=("@status")'],
    ['an unknown derived component', 'sig1=("@frobnicate")'],
    ['component parameters', 'sig1=("content-type";sf)'],
  ])('refuses %s as unsupported with signature_components', (_, input) => {
    expect(codeOf(() => parsed(input))).toBe('signature_components');
  });

  it('uses the first signature when Signature-Input names several', () => {
    const headers = signatureHeaders(
      'first=("@method");keyid="a", second=("@path");keyid="b"',
      `second=${SIGNATURE_64}, first=${SIGNATURE_64}`,
    );
    expect(parseSignature(headers)).toMatchObject({ label: 'first', keyId: 'a' });
  });
});

describe('requireCoverage', () => {
  const complete = 'sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k"';

  it('accepts @method, @target-uri and content-digest with created and keyid', () => {
    expect(requireCoverage(parsed(complete), true)).toMatchObject({ created: 1, keyId: 'k' });
  });

  it('accepts @path with @authority in place of @target-uri', () => {
    const input = 'sig1=("@method" "@path" "@authority");created=1;keyid="k";alg="ed25519"';
    expect(requireCoverage(parsed(input), false).keyId).toBe('k');
  });

  it('does not ask for content-digest when there is no body', () => {
    const input = 'sig1=("@method" "@target-uri");created=1;keyid="k"';
    expect(requireCoverage(parsed(input), false).components).toEqual(['@method', '@target-uri']);
  });

  it.each([
    ['@method is not covered', 'sig1=("@target-uri" "content-digest");created=1;keyid="k"'],
    ['no target is covered', 'sig1=("@method" "content-digest");created=1;keyid="k"'],
    [
      '@path is covered without @authority',
      'sig1=("@method" "@path" "content-digest");created=1;keyid="k"',
    ],
    [
      '@authority is covered without @path',
      'sig1=("@method" "@authority" "content-digest");created=1;keyid="k"',
    ],
    [
      'content-digest is not covered for a body',
      'sig1=("@method" "@target-uri");created=1;keyid="k"',
    ],
    ['created is missing', 'sig1=("@method" "@target-uri" "content-digest");keyid="k"'],
    ['keyid is missing', 'sig1=("@method" "@target-uri" "content-digest");created=1'],
    ['alg is not ed25519', `${complete.replace(';keyid', ';alg="rsa-pss-sha512";keyid')}`],
  ])('refuses with signature_components when %s', (_, input) => {
    expect(codeOf(() => requireCoverage(parsed(input), true))).toBe('signature_components');
  });
});

describe('buildSignatureBase', () => {
  it('rebuilds the RFC 9421 B.2.6 signature base, which the RFC signature verifies', () => {
    const headers = rfcRequestHeaders();
    const signature = parseSignature(headers);

    const base = buildSignatureBase(signature, {
      method: 'POST',
      scheme: 'https',
      authority: authorityOf(headers.get('host'), 'https'),
      pathAndQuery: '/foo?param=Value&Pet=dog',
      headers,
    });

    expect(base).toBe(RFC_B26.base);
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: RFC_PUBLIC_X },
      format: 'jwk',
    });
    expect(verify(null, Buffer.from(base), key, signature.signature)).toBe(true);
  });

  it('derives every supported request component from the rebuilt target', () => {
    const components = [
      '@method',
      '@target-uri',
      '@authority',
      '@scheme',
      '@request-target',
      '@path',
      '@query',
    ];
    const base = buildSignatureBase(
      { components, params: '()' },
      message('/api/v1/invoices?limit=5&status=New'),
    );

    expect(base.split('\n')).toEqual([
      '"@method": GET',
      '"@target-uri": http://shop.onion/api/v1/invoices?limit=5&status=New',
      '"@authority": shop.onion',
      '"@scheme": http',
      '"@request-target": /api/v1/invoices?limit=5&status=New',
      '"@path": /api/v1/invoices',
      '"@query": ?limit=5&status=New',
      '"@signature-params": ()',
    ]);
  });

  it('gives @query as a lone ? when the target has no query', () => {
    const base = buildSignatureBase({ components: ['@query'], params: '()' }, message('/a'));
    expect(base.split('\n')[0]).toBe('"@query": ?');
  });

  it('joins repeated header fields with a comma and a space', () => {
    const headers = new Headers();
    headers.append('x-tag', 'one');
    headers.append('x-tag', 'two');
    const base = buildSignatureBase({ components: ['x-tag'], params: '()' }, message('/', headers));
    expect(base.split('\n')[0]).toBe('"x-tag": one, two');
  });

  it('refuses with signature_components when a covered field is not in the request', () => {
    const build = () =>
      buildSignatureBase({ components: ['content-type'], params: '()' }, message('/'));
    expect(codeOf(build)).toBe('signature_components');
  });

  it('refuses with signature_malformed when a covered component is not ASCII', () => {
    const headers = new Headers({ 'x-note': 'caf\u00e9' });
    const build = () =>
      buildSignatureBase({ components: ['x-note'], params: '()' }, message('/', headers));
    expect(codeOf(build)).toBe('signature_malformed');
  });
});

describe('authorityOf', () => {
  it('lowercases the host and drops the default port of the scheme', () => {
    expect(authorityOf('ABC.Onion:80', 'http')).toBe('abc.onion');
    expect(authorityOf('abc.onion:443', 'https')).toBe('abc.onion');
  });

  it('keeps a port that is not the default', () => {
    expect(authorityOf('127.0.0.1:8080', 'http')).toBe('127.0.0.1:8080');
  });

  it.each([null, '', 'shop.onion/path', 'user@shop.onion', 'a b'])(
    'refuses %j with signature_malformed',
    (host) => {
      expect(codeOf(() => authorityOf(host, 'http'))).toBe('signature_malformed');
    },
  );
});

describe('parseContentDigest', () => {
  const sha256 = createHash('sha256').update('{}').digest();
  const sha512 = createHash('sha512').update('{}').digest();

  it('reads sha-256 and sha-512 digests and ignores other algorithms', () => {
    const field = `md5=:AAAA:, sha-256=:${sha256.toString('base64')}:, sha-512=:${sha512.toString('base64')}:`;
    expect(parseContentDigest(field)).toEqual([
      { algorithm: 'sha256', value: new Uint8Array(sha256) },
      { algorithm: 'sha512', value: new Uint8Array(sha512) },
    ]);
  });

  it.each([
    ['only unsupported algorithms', 'md5=:AAAA:, unixsum=:AAAA:'],
    ['a digest of the wrong length', `sha-256=:${sha512.toString('base64')}:`],
    ['a digest that is not a byte sequence', 'sha-256="abc"'],
    ['a field that does not parse', 'sha-256=:AAAA'],
  ])('refuses %s with digest_mismatch', (_, field) => {
    expect(codeOf(() => parseContentDigest(field))).toBe('digest_mismatch');
  });
});
