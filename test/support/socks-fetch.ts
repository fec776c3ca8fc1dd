import type { Socket } from 'node:net';

import { SocksClient } from 'socks';

export type SocksFetchInit = {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole exchange: SOCKS handshake, request and response. */
  timeoutMs?: number;
};

export type SocksFetchResponse = {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
};

/** Why a fetch failed, for callers to branch on. */
export type SocksFetchFailure = 'socks_rejected' | 'socks_failed' | 'timeout' | 'bad_response';

export class SocksFetchError extends Error {
  readonly code: SocksFetchFailure;
  /** The SOCKS5 reply code (RFC 1928 section 6) when the proxy refused. */
  readonly socksReply: number | undefined;

  constructor(code: SocksFetchFailure, message: string, socksReply?: number) {
    super(message);
    this.name = 'SocksFetchError';
    this.code = code;
    this.socksReply = socksReply;
  }
}

/** RFC 1928 reply names as the `socks` package spells them. */
const SOCKS5_REPLIES = [
  'Granted',
  'Failure',
  'NotAllowed',
  'NetworkUnreachable',
  'HostUnreachable',
  'ConnectionRefused',
  'TTLExpired',
  'CommandNotSupported',
  'AddressNotSupported',
];

/**
 * One HTTP/1.1 exchange through a SOCKS5 proxy, with the host name
 * resolved by the proxy (socks5h), so it reaches .onion addresses. The
 * request says `Connection: close` and the response is read to the end.
 */
export async function fetchViaSocks(
  socksUrl: string,
  url: string,
  init: SocksFetchInit = {},
): Promise<SocksFetchResponse> {
  const proxy = parseSocksUrl(socksUrl);
  const target = new URL(url);
  if (target.protocol !== 'http:') {
    throw new TypeError(`url must be http://, got ${target.protocol}`);
  }
  const timeoutMs = init.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;

  const socket = await connect(proxy, target, timeoutMs);
  try {
    socket.write(formatRequest(target, init));
    const raw = await readAll(socket, Math.max(1, deadline - Date.now()));
    return parseResponse(raw);
  } finally {
    socket.destroy();
  }
}

function parseSocksUrl(socksUrl: string): { host: string; port: number } {
  const proxy = new URL(socksUrl);
  if (proxy.protocol !== 'socks5h:' && proxy.protocol !== 'socks5:') {
    throw new TypeError(`socksUrl must be socks5h://host:port, got ${socksUrl}`);
  }
  return { host: proxy.hostname, port: Number(proxy.port) };
}

async function connect(
  proxy: { host: string; port: number },
  target: URL,
  timeoutMs: number,
): Promise<Socket> {
  try {
    const { socket } = await SocksClient.createConnection({
      command: 'connect',
      proxy: { host: proxy.host, port: proxy.port, type: 5 },
      destination: { host: target.hostname, port: Number(target.port || 80) },
      timeout: timeoutMs,
    });
    return socket;
  } catch (err) {
    throw socksError(err as Error);
  }
}

/**
 * The `socks` package reports a refusal only in its message, as
 * "... - HostUnreachable"; that suffix is turned back into the reply code.
 */
function socksError(err: Error): SocksFetchError {
  if (/timed out/i.test(err.message)) {
    return new SocksFetchError('timeout', `SOCKS handshake timed out: ${err.message}`);
  }
  const name = / - \(?(\w+)\)?$/.exec(err.message)?.[1];
  const reply = name === undefined ? -1 : SOCKS5_REPLIES.indexOf(name);
  if (reply > 0) {
    return new SocksFetchError('socks_rejected', `SOCKS proxy refused: ${name}`, reply);
  }
  return new SocksFetchError('socks_failed', `SOCKS connection failed: ${err.message}`);
}

function formatRequest(target: URL, init: SocksFetchInit): Buffer {
  const body = init.body === undefined ? undefined : Buffer.from(init.body);
  const lines = [
    `${init.method ?? 'GET'} ${target.pathname}${target.search} HTTP/1.1`,
    `Host: ${target.host}`,
    'Connection: close',
  ];
  for (const [name, value] of Object.entries(init.headers ?? {})) {
    lines.push(`${name}: ${value}`);
  }
  if (body !== undefined) lines.push(`Content-Length: ${body.length}`);

  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  return body === undefined ? head : Buffer.concat([head, body]);
}

function readAll(socket: Socket, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      reject(new SocksFetchError('timeout', `no complete response within ${timeoutMs} ms`));
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new SocksFetchError('bad_response', `connection failed: ${err.message}`));
    });
    // A response ends when the server closes; parsing tells whether it
    // was complete.
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

function parseResponse(raw: Buffer): SocksFetchResponse {
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) throw new SocksFetchError('bad_response', 'response ended inside its header');
  const [statusLine = '', ...headerLines] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (status === undefined) {
    throw new SocksFetchError('bad_response', `not an HTTP/1.x status line: ${statusLine}`);
  }

  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }

  const rest = raw.subarray(split + 4);
  return { status: Number(status), headers, body: decodeBody(rest, headers).toString('utf8') };
}

function decodeBody(rest: Buffer, headers: Record<string, string>): Buffer {
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) return dechunk(rest);
  const length = headers['content-length'];
  if (length === undefined) return rest;
  if (rest.length < Number(length)) {
    throw new SocksFetchError('bad_response', `body has ${rest.length} of ${length} bytes`);
  }
  return rest.subarray(0, Number(length));
}

/** Chunked transfer coding, RFC 9112 section 7.1; trailers are dropped. */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) throw new SocksFetchError('bad_response', 'chunked body ended early');
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) throw new SocksFetchError('bad_response', 'bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (data.length < start + size) {
      throw new SocksFetchError('bad_response', 'chunked body ended early');
    }
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
}
