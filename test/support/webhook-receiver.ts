import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isAbsolute } from 'node:path';

/** A webhook the receiver accepted: signature valid and answered with a 2xx. */
export type ReceivedWebhook = {
  deliveryId: string;
  type: string;
  invoiceId: string;
  body: Record<string, unknown>;
  /** The body exactly as sent, the bytes the signature covers. */
  raw: string;
  headers: IncomingHttpHeaders;
};

/** Every request seen, accepted or not. */
export type SeenRequest = {
  path: string;
  deliveryId: string | undefined;
  signatureValid: boolean;
  answered: number | 'hung';
};

export type ReceiverConnection = { remoteAddress: string; remotePort: number };

/** Where the receiver listens: a TCP host and port, or a unix socket. */
export type ReceiverOptions = {
  host?: string;
  /** 0 (the default) lets the kernel choose; kept across restarts. */
  port?: number;
  /**
   * An absolute socket path instead of TCP, for a receiver that only an
   * onion service can reach. Its URL is the onion's, so `url()` throws.
   */
  socketPath?: string;
};

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * A merchant's webhook endpoint on a real listener. It checks the
 * BTCPay-Sig header against the shared secret, answers a status the test
 * chooses (or never answers), and can be stopped and started again on the
 * same port (or socket) to play a merchant that is down for a while.
 */
export class WebhookReceiver {
  readonly accepted: ReceivedWebhook[] = [];
  readonly requests: SeenRequest[] = [];
  readonly connections: ReceiverConnection[] = [];
  readonly #secret: string;
  readonly #host: string;
  readonly #socketPath: string | undefined;
  readonly #sockets = new Set<Socket>();
  #server: http.Server | undefined;
  #port = 0;
  #mode: { status: number } | 'hang' = { status: 200 };
  #waiters: (() => void)[] = [];

  private constructor(secret: string, options: ReceiverOptions) {
    this.#secret = secret;
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 0;
    this.#socketPath = options.socketPath;
  }

  static async start(secret: string, options: ReceiverOptions = {}) {
    const { socketPath } = options;
    if (socketPath !== undefined) {
      if (!isAbsolute(socketPath)) throw new RangeError('socketPath must be an absolute path');
      if (options.host !== undefined || options.port !== undefined) {
        throw new TypeError('give either socketPath or host and port, not both');
      }
    }
    const receiver = new WebhookReceiver(secret, options);
    await receiver.restart();
    return receiver;
  }

  get port(): number {
    return this.#port;
  }

  /** The endpoint URL; `path` may carry a query string. */
  url(path = '/webhook'): string {
    if (this.#socketPath !== undefined) {
      throw new TypeError('a receiver on a unix socket has no URL; use its onion address');
    }
    return `http://${this.#host}:${this.#port}${path}`;
  }

  get listening(): boolean {
    return this.#server !== undefined;
  }

  /** Answer every correctly signed request with `status` from now on. */
  answer(status: number): void {
    this.#mode = { status };
  }

  /** Read requests and never answer them. */
  hang(): void {
    this.#mode = 'hang';
  }

  /** Resolves once `count` webhooks have been accepted in all. */
  async waitForAccepted(count: number, timeoutMs = 10_000): Promise<ReceivedWebhook[]> {
    await this.#waitUntil(() => this.accepted.length >= count, timeoutMs, `${count} webhooks`);
    return this.accepted;
  }

  /** Resolves once `count` requests have been seen in all, accepted or not. */
  async waitForRequests(count: number, timeoutMs = 10_000): Promise<SeenRequest[]> {
    await this.#waitUntil(() => this.requests.length >= count, timeoutMs, `${count} requests`);
    return this.requests;
  }

  /** Closes the listener and every open connection, hung ones included. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** Listens again, on the same port or socket once one has been chosen. */
  async restart(): Promise<void> {
    if (this.#server) return;
    const server = http.createServer((req, res) => this.#handle(req, res));
    server.on('connection', (socket) => this.#track(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const listening = () => {
        server.off('error', reject);
        resolve();
      };
      if (this.#socketPath !== undefined) server.listen(this.#socketPath, listening);
      else server.listen(this.#port, this.#host, listening);
    });
    if (this.#socketPath === undefined) this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  #track(socket: Socket): void {
    this.connections.push({
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    });
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => this.#answer(req, res, Buffer.concat(chunks)));
  }

  #answer(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): void {
    const signatureValid = this.#verify(req.headers['btcpay-sig'], raw);
    const body = signatureValid ? parseObject(raw) : undefined;
    const deliveryId = typeof body?.deliveryId === 'string' ? body.deliveryId : undefined;
    const mode = this.#mode;
    const answered = !signatureValid ? 401 : mode === 'hang' ? 'hang' : mode.status;
    this.requests.push({
      path: req.url ?? '',
      deliveryId,
      signatureValid,
      answered: answered === 'hang' ? 'hung' : answered,
    });

    if (answered !== 'hang' && answered >= 200 && answered < 300 && body) {
      this.accepted.push({
        deliveryId: deliveryId ?? '',
        type: String(body.type),
        invoiceId: String(body.invoiceId),
        body,
        raw: raw.toString('utf8'),
        headers: req.headers,
      });
    }
    this.#notify();
    if (answered === 'hang') return;
    res.writeHead(answered, { 'content-type': 'application/json' });
    res.end(answered < 300 ? '{"ok":true}' : '{"ok":false}');
  }

  /** Constant-time comparison of the whole header against the expected one. */
  #verify(header: string | string[] | undefined, raw: Buffer): boolean {
    if (typeof header !== 'string') return false;
    const digest = createHmac('sha256', this.#secret).update(raw).digest('hex');
    const expected = Buffer.from(`sha256=${digest}`);
    const given = Buffer.from(header);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #waitUntil(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `webhook receiver: waited ${timeoutMs} ms for ${what}; ` +
            `have ${this.accepted.length} accepted of ${this.requests.length} requests`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

function parseObject(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
