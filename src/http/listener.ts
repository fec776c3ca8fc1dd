import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { createAdaptorServer } from '@hono/node-server';

import type { ListenAddress } from '../config/config.js';

export type ListenerOptions = {
  address: ListenAddress;
  fetch: (request: Request) => Response | Promise<Response>;
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Largest request head (request line and headers) accepted, in bytes. */
  maxHeaderBytes?: number;
};

/**
 * An HTTP listener on TCP or a unix socket. A unix socket is created with
 * mode 0660 so that only the service's group (which the tor user joins)
 * can connect; a stale socket file left by a crash is removed first.
 */
export class Listener {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #address: ListenAddress;

  private constructor(server: Server, address: ListenAddress) {
    this.#server = server;
    this.#address = address;
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async open(options: ListenerOptions): Promise<Listener> {
    const server = createAdaptorServer({
      fetch: options.fetch,
      serverOptions: { maxHeaderSize: options.maxHeaderBytes ?? 8192 },
    }) as Server;
    server.maxConnections = options.maxConnections;
    server.headersTimeout = options.headersTimeoutMs;
    server.requestTimeout = options.requestTimeoutMs;
    server.keepAliveTimeout = 5_000;

    const listener = new Listener(server, options.address);
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
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    if (this.#address.kind === 'unix') removeStaleSocket(this.#address.path);
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

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
