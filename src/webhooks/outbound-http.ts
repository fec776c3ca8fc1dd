import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

import { SocksClient } from 'socks';

import { StrongholdError } from '../errors.js';

/** Why an outbound request failed, for callers to branch on. */
export type OutboundFailure =
  | 'invalid_url'
  | 'direct_connection_refused'
  | 'proxy_failed'
  | 'connect_failed'
  | 'tls_failed'
  | 'request_failed'
  | 'bad_response'
  | 'timeout'
  | 'aborted';

/**
 * An outbound request that did not produce an HTTP status. Messages name
 * the host at most, never the path or query, which can carry credentials.
 */
export class OutboundHttpError extends StrongholdError {
  declare readonly code: OutboundFailure;

  constructor(code: OutboundFailure, message: string) {
    super(code, message);
  }
}

export type PostJsonOptions = {
  /** `socks5h://host:port`; `socks5://` is treated the same (see parseProxyUrl). */
  proxy?: string;
  /** Refuse to open a direct connection when no proxy is configured. */
  torOnly: boolean;
  /** The whole exchange: proxy handshake, connect, TLS, request and response. */
  timeoutMs: number;
  /** Bytes of the response body read before the connection is dropped. */
  maxResponseBytes?: number;
  signal?: AbortSignal;
};

export type ProxyAddress = { host: string; port: number };

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
const MANAGED_HEADERS = new Set(['host', 'content-type', 'content-length', 'connection']);

/**
 * POSTs a JSON body and resolves with the response status. Redirects are
 * never followed: a 3xx is returned like any other status. With a proxy
 * the host name is handed to the proxy unresolved, so .onion names work
 * and nothing about the destination reaches the local resolver.
 */
export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: PostJsonOptions,
): Promise<{ status: number }> {
  const target = parseTarget(url);
  checkHeaders(headers);
  const proxy = options.proxy ? parseProxyUrl(options.proxy) : undefined;
  if (!proxy && options.torOnly) {
    throw new OutboundHttpError(
      'direct_connection_refused',
      'tor_only is set and no outbound proxy is configured',
    );
  }

  const { signal, release } = deadlineSignal(options.timeoutMs, options.signal);
  try {
    const socket = await openSocket(target, proxy, options.timeoutMs, signal);
    try {
      const payload = Buffer.from(body, 'utf8');
      const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
      const status = await exchange(socket, target, payload, headers, {
        signal,
        maxResponseBytes,
      });
      return { status };
    } finally {
      socket.destroy();
    }
  } finally {
    release();
  }
}

/**
 * One signal for the whole exchange, aborted with the OutboundHttpError
 * that explains why: the deadline passed or the caller gave up.
 */
function deadlineSignal(
  timeoutMs: number,
  caller: AbortSignal | undefined,
): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new OutboundHttpError('timeout', `no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const onAbort = () =>
    controller.abort(new OutboundHttpError('aborted', 'the request was aborted'));
  if (caller?.aborted) onAbort();
  else caller?.addEventListener('abort', onAbort, { once: true });

  const release = () => {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onAbort);
  };
  return { signal: controller.signal, release };
}

/**
 * Reads `socks5h://host:port`. Plain `socks5://` is accepted and means the
 * same here: names are always resolved by the proxy, because resolving a
 * merchant's name locally would leak it outside Tor.
 */
export function parseProxyUrl(proxy: string): ProxyAddress {
  let parsed: URL;
  try {
    parsed = new URL(proxy);
  } catch {
    throw new TypeError('proxy must be socks5h://host:port');
  }
  const port = Number(parsed.port);
  const valid =
    (parsed.protocol === 'socks5h:' || parsed.protocol === 'socks5:') &&
    parsed.hostname !== '' &&
    Number.isInteger(port) &&
    port > 0 &&
    port < 65536;
  if (!valid) throw new TypeError('proxy must be socks5h://host:port');
  return { host: unbracket(parsed.hostname), port };
}

type Target = { https: boolean; hostname: string; port: number; host: string; path: string };

function parseTarget(url: string): Target {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new OutboundHttpError('invalid_url', 'the webhook URL is not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new OutboundHttpError('invalid_url', 'the webhook URL must be http:// or https://');
  }
  const https = parsed.protocol === 'https:';
  return {
    https,
    hostname: unbracket(parsed.hostname),
    port: parsed.port === '' ? (https ? 443 : 80) : Number(parsed.port),
    host: parsed.host,
    path: `${parsed.pathname}${parsed.search}`,
  };
}

function checkHeaders(headers: Record<string, string>): void {
  for (const name of Object.keys(headers)) {
    if (MANAGED_HEADERS.has(name.toLowerCase())) {
      throw new TypeError(`headers must not set ${name}; postJson sets it`);
    }
  }
}

function unbracket(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

/** A connected socket to the target, TLS already established for https. */
async function openSocket(
  target: Target,
  proxy: ProxyAddress | undefined,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Duplex> {
  const raw = proxy
    ? await viaProxy(proxy, target, timeoutMs, signal)
    : await direct(target, signal);
  // Errors after the handshakes reach the HTTP client's own listener; this
  // one only keeps a late error from becoming an uncaught exception.
  raw.on('error', ignore);
  if (!target.https) return raw;

  const secure = tls.connect({
    socket: raw,
    servername: net.isIP(target.hostname) === 0 ? target.hostname : undefined,
    ALPNProtocols: ['http/1.1'],
  });
  try {
    await settled(secure, 'secureConnect', signal, 'tls_failed');
  } catch (err) {
    raw.destroy();
    throw err;
  }
  secure.on('error', ignore);
  secure.once('close', () => raw.destroy());
  return secure;
}

function ignore(): void {}

async function direct(target: Target, signal: AbortSignal): Promise<Duplex> {
  const socket = net.connect({ host: target.hostname, port: target.port });
  await settled(socket, 'connect', signal, 'connect_failed');
  return socket;
}

async function viaProxy(
  proxy: ProxyAddress,
  target: Target,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Duplex> {
  const pending = SocksClient.createConnection({
    command: 'connect',
    proxy: { host: proxy.host, port: proxy.port, type: 5 },
    destination: { host: target.hostname, port: target.port },
    timeout: timeoutMs,
  });
  // The socks client cannot be cancelled: if it connects after the
  // deadline, the late socket is closed at once.
  pending.then(
    ({ socket }) => {
      if (signal.aborted) socket.destroy();
    },
    () => undefined,
  );

  const { socket } = await raceSignal(pending, signal).catch((err: unknown) => {
    if (err instanceof OutboundHttpError) throw err;
    throw new OutboundHttpError('proxy_failed', `SOCKS5 proxy: ${(err as Error).message}`);
  });
  return socket;
}

/** Waits for a socket's ready event, destroying it on error or abort. */
function settled(
  socket: net.Socket,
  ready: 'connect' | 'secureConnect',
  signal: AbortSignal,
  failure: OutboundFailure,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: OutboundHttpError) => {
      socket.off(ready, onReady);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve();
      }
    };
    const onReady = () => done();
    const onError = (err: Error) => done(new OutboundHttpError(failure, describe(err)));
    const onAbort = () => done(abortError(signal));

    if (signal.aborted) return onAbort();
    socket.once(ready, onReady);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

type ExchangeOptions = { signal: AbortSignal; maxResponseBytes: number };

/**
 * Sends the request on an open socket and resolves with the status once
 * the body has ended, passed the size bound, or the deadline came after
 * the status line: the status is the answer, the body is only drained.
 */
function exchange(
  socket: Duplex,
  target: Target,
  payload: Buffer,
  headers: Record<string, string>,
  options: ExchangeOptions,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let status: number | undefined;
    const fail = (err: Error) => {
      if (status !== undefined) resolve(status);
      else if (options.signal.aborted) reject(abortError(options.signal));
      else reject(requestError(err));
    };

    const req = http.request(
      {
        method: 'POST',
        host: target.hostname,
        port: target.port,
        path: target.path,
        headers: {
          ...headers,
          Host: target.host,
          'Content-Type': 'application/json',
          'Content-Length': String(payload.length),
          Connection: 'close',
        },
        createConnection: () => socket as net.Socket,
        signal: options.signal,
      },
      (res) => {
        status = res.statusCode ?? 0;
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > options.maxResponseBytes) {
            resolve(status!);
            res.destroy();
          }
        });
        res.on('end', () => resolve(status!));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(payload);
  });
}

function abortError(signal: AbortSignal): OutboundHttpError {
  return signal.reason instanceof OutboundHttpError
    ? signal.reason
    : new OutboundHttpError('aborted', 'the request was aborted');
}

function requestError(err: Error): OutboundHttpError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('HPE_')) {
    return new OutboundHttpError('bad_response', `the response is not valid HTTP/1.1 (${code})`);
  }
  return new OutboundHttpError('request_failed', describe(err));
}

/** The error's code or message, without addresses a caller might log. */
function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ?? err.message;
}
