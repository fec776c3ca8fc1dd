import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { getRequestListener, RequestError } from '@hono/node-server';

import type { ListenAddress } from '../config/config.js';
import { errorBody } from './errors.js';

export type ListenerOptions = {
  address: ListenAddress;
  fetch: (request: Request) => Response | Promise<Response>;
  /** Connections served at once; the next ones are answered 503 and closed. */
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Largest request head (request line and headers) accepted, in bytes. */
  maxHeaderBytes?: number;
};

/**
 * Longest request target accepted, in bytes. The longest route a client
 * needs (a token introspection) is under 100 bytes; 2 KiB leaves room for
 * query strings while keeping a client from making every router and log
 * step work on a head-sized URL.
 */
export const MAX_URL_BYTES = 2_048;
const DEFAULT_MAX_HEADER_BYTES = 8_192;
/**
 * How long a refused connection stays open for its 503 to be read before
 * it is cut. Short: refusing is what happens under a flood.
 */
const REFUSAL_LINGER_MS = 1_000;
/**
 * Connections past the cap that still get a 503 rather than a silent drop.
 * Past these, node closes new connections as soon as they are accepted.
 */
const REFUSAL_HEADROOM = 256;
/**
 * Node checks header and request timeouts on a timer, every 30 s by
 * default, so a 10 s headers timeout really allowed up to 40 s. Checking
 * four times per timeout (at most once a second) keeps the bound close.
 */
const MAX_CHECK_INTERVAL_MS = 1_000;
const MIN_CHECK_INTERVAL_MS = 25;

/** Node's parser errors and timeouts, as the status and code the client gets. */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'header_too_large', 'request head is too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'payload_too_large', 'chunk extensions are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'request was not received in time'],
};
const BAD_REQUEST: [number, string, string] = [400, 'bad_request', 'malformed HTTP request'];
const INTERNAL: [number, string, string] = [500, 'internal', 'internal error'];

/**
 * An HTTP listener on TCP or a unix socket. A unix socket is created with
 * mode 0660 so that only the service's group (which the tor user joins)
 * can connect; a stale socket file left by a crash is removed first.
 *
 * Every refusal made below the app (a head too large, a URL too long, a
 * client too slow, too many connections) is answered with the same JSON
 * error body the app uses, then the connection is closed.
 */
export class Listener {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #refused = new Set<Socket>();
  readonly #address: ListenAddress;
  readonly #maxConnections: number;
  #closing = false;

  private constructor(server: Server, options: ListenerOptions) {
    this.#server = server;
    this.#address = options.address;
    this.#maxConnections = options.maxConnections;
    server.on('connection', (socket: Socket) => this.#accept(socket));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) =>
      answerClientError(err, socket),
    );
  }

  static async open(options: ListenerOptions): Promise<Listener> {
    const { headersTimeoutMs, requestTimeoutMs } = options;
    const checkInterval = Math.min(headersTimeoutMs, requestTimeoutMs) / 4;
    const handle = getRequestListener(options.fetch, { errorHandler: unreadableRequest });
    let listener: Listener | undefined;
    const server = createServer(
      {
        maxHeaderSize: options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
        // Node answers a missing Host with a bare 400; the adapter refuses it
        // too (unreadableRequest), with the JSON body every refusal has.
        requireHostHeader: false,
        connectionsCheckingInterval: Math.round(
          Math.min(MAX_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, checkInterval)),
        ),
      },
      (req, res) => listener!.#serve(req, res, handle),
    );
    server.maxConnections = options.maxConnections + REFUSAL_HEADROOM;
    server.headersTimeout = headersTimeoutMs;
    server.requestTimeout = requestTimeoutMs;
    server.keepAliveTimeout = 5_000;

    listener = new Listener(server, options);
    await listener.#listen();
    return listener;
  }

  /** `host:port` as bound (with the real port when 0 was asked), or `unix:/path`. */
  get url(): string {
    if (this.#address.kind === 'unix') return `unix:${this.#address.path}`;
    const bound = this.#server.address() as AddressInfo;
    const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    return `${host}:${bound.port}`;
  }

  get port(): number | undefined {
    if (this.#address.kind === 'unix') return undefined;
    return (this.#server.address() as AddressInfo).port;
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `graceMs`,
   * then cuts what is left.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    // A connection whose response is in flight closes once it is sent,
    // rather than idling as keep-alive until the grace period runs out.
    for (const socket of this.#sockets) {
      const res = responseOn(socket);
      if (res !== undefined) closeAfter(res);
    }
    for (const socket of this.#refused) socket.destroy();
    const timer = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    if (this.#address.kind === 'unix') removeStaleSocket(this.#address.path);
  }

  #serve(req: IncomingMessage, res: ServerResponse, handle: RequestHandler): void {
    // A refused connection's requests go unanswered: its 503 is sent.
    if (this.#refused.has(req.socket) || refuseLongUrl(req, res)) return;
    if (this.#closing) closeAfter(res);
    void handle(req, res);
  }

  /**
   * Serves the connection, or refuses it with a 503 when `maxConnections`
   * are open already. A refused connection never reaches the app: requests
   * it sends are left unanswered and it is closed shortly.
   */
  #accept(socket: Socket): void {
    if (this.#sockets.size < this.#maxConnections) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      return;
    }
    this.#refused.add(socket);
    socket.once('close', () => this.#refused.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.end(
      rawResponse(503, 'too_many_connections', 'too many open connections; retry shortly'),
    );
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  }

  async #listen(): Promise<void> {
    const address = this.#address;
    if (address.kind === 'unix') removeStaleSocket(address.path);
    // The socket file takes its mode from the umask at bind time; narrow it
    // for the bind so that there is no moment when others could connect.
    const umask = address.kind === 'unix' ? process.umask(0o117) : undefined;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      const done = () => {
        this.#server.off('error', reject);
        resolve();
      };
      if (address.kind === 'unix') this.#server.listen(address.path, done);
      else this.#server.listen(address.port, address.host, done);
    }).finally(() => {
      if (umask !== undefined) process.umask(umask);
    });
    if (address.kind === 'unix') chmodSync(address.path, 0o660);
  }
}

type RequestHandler = ReturnType<typeof getRequestListener>;

/**
 * The response a connection is sending, if any. Node keeps it on the socket
 * (`_httpMessage`, undocumented); reading it there spares every request a
 * close listener and a set entry of its own (bench/README.md, redeem-miss).
 */
function responseOn(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** Ends the response's connection once the response is sent. */
function closeAfter(res: ServerResponse): void {
  if (!res.headersSent) {
    res.setHeader('connection', 'close');
    return;
  }
  // A finished response lets go of its socket: hold on to it first.
  const socket = res.socket;
  res.once('finish', () => socket?.end());
}

/** Answers 414 for a request target over MAX_URL_BYTES; true when it did. */
function refuseLongUrl(req: IncomingMessage, res: ServerResponse): boolean {
  // The parser reads the target as latin1, so its length is its byte count.
  if ((req.url ?? '').length <= MAX_URL_BYTES) return false;
  const body = JSON.stringify(
    errorBody('uri_too_long', `request target exceeds ${MAX_URL_BYTES} bytes`),
  );
  res.writeHead(414, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
  return true;
}

/**
 * The answer when the adapter cannot build a Request (no Host header, a
 * malformed one, a backslash in the path) instead of its empty 400.
 */
function unreadableRequest(err: unknown): Response {
  const [status, code, message] = err instanceof RequestError ? BAD_REQUEST : INTERNAL;
  return new Response(JSON.stringify(errorBody(code, message)), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

/**
 * Replaces node's bare answer to a request it could not parse or that
 * timed out: the same status, with a JSON error body. As node does, it
 * answers only when no response has started on the connection.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const inFlight = responseOn(socket);
  if (err.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) {
    const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? BAD_REQUEST;
    socket.write(rawResponse(status, code, message));
  }
  socket.destroy();
}

function rawResponse(status: number, code: string, message: string): string {
  const body = JSON.stringify(errorBody(code, message));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    (status === 503 ? 'retry-after: 1\r\n' : '') +
    'connection: close\r\n\r\n' +
    body
  );
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
