import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';

/** One CONNECT request as the client sent it. */
export type SocksConnectRequest = {
  host: string;
  port: number;
  addressType: 'ipv4' | 'domain' | 'ipv6';
};

const VERSION = 5;
const NO_AUTH = 0x00;
const NO_ACCEPTABLE_METHOD = 0xff;
const CONNECT = 0x01;
// RFC 1928 section 6 replies.
const SUCCEEDED = 0x00;
const GENERAL_FAILURE = 0x01;
const HOST_UNREACHABLE = 0x04;
const CONNECTION_REFUSED = 0x05;
const COMMAND_NOT_SUPPORTED = 0x07;
const ADDRESS_NOT_SUPPORTED = 0x08;

/**
 * A test stand-in for Tor's SOCKS port: SOCKS5 without authentication,
 * CONNECT only (RFC 1928). It resolves no names. A name given to `route`
 * (say `merchantxyz.onion`) leads to a local port; IP literals are
 * connected to as they are; any other name is answered "host unreachable",
 * as Tor answers an onion address it cannot find. Every request is
 * recorded, and so is the local port of each connection the proxy opens,
 * so a test can tell a proxied connection from a direct one.
 */
export class TorStandInSocks5Server {
  readonly requests: SocksConnectRequest[] = [];
  /** Local ports of the proxy's own connections to destinations. */
  readonly upstreamPorts: number[] = [];
  readonly #routes = new Map<string, number>();
  readonly #sockets = new Set<Socket>();
  readonly #server: net.Server;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(): Promise<TorStandInSocks5Server> {
    const server = net.createServer();
    const proxy = new TorStandInSocks5Server(server);
    server.on('connection', (socket) => proxy.#accept(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The proxy URL as outbound_proxy takes it. */
  get url(): string {
    return `socks5h://127.0.0.1:${this.port}`;
  }

  /** Sends CONNECTs for `hostname` (any port) to 127.0.0.1:`localPort`. */
  route(hostname: string, localPort: number): void {
    this.#routes.set(hostname.toLowerCase(), localPort);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #accept(client: Socket): void {
    this.#track(client);
    this.#serve(client).catch(() => client.destroy());
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.#sockets.delete(socket));
  }

  async #serve(client: Socket): Promise<void> {
    const reader = new ByteReader(client);

    // Method negotiation: only "no authentication" is offered.
    const [version, methodCount] = await reader.read(2);
    const methods = await reader.read(methodCount!);
    if (version !== VERSION || !methods.includes(NO_AUTH)) {
      client.end(Buffer.from([VERSION, NO_ACCEPTABLE_METHOD]));
      return;
    }
    client.write(Buffer.from([VERSION, NO_AUTH]));

    // The request.
    const [, command, , addressType] = await reader.read(4);
    const request = await readDestination(reader, addressType!);
    if (!request) return reply(client, ADDRESS_NOT_SUPPORTED);
    this.requests.push(request);
    if (command !== CONNECT) return reply(client, COMMAND_NOT_SUPPORTED);

    const destination = this.#resolve(request);
    if (!destination) return reply(client, HOST_UNREACHABLE);
    await this.#relay(client, reader.rest(), destination);
  }

  #resolve(request: SocksConnectRequest): { host: string; port: number } | undefined {
    if (request.addressType !== 'domain') return { host: request.host, port: request.port };
    const port = this.#routes.get(request.host.toLowerCase());
    return port === undefined ? undefined : { host: '127.0.0.1', port };
  }

  async #relay(client: Socket, early: Buffer, destination: { host: string; port: number }) {
    const upstream = net.connect(destination);
    this.#track(upstream);
    try {
      await once(upstream, 'connect');
    } catch {
      return reply(client, CONNECTION_REFUSED);
    }
    this.upstreamPorts.push(upstream.localPort ?? 0);
    reply(client, SUCCEEDED, false);
    if (early.length > 0) upstream.write(early);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  }
}

/** A reply with an all-zero IPv4 bound address; ends the connection unless it succeeded. */
function reply(client: Socket, code: number, end = true): void {
  const message = Buffer.from([VERSION, code, 0, 0x01, 0, 0, 0, 0, 0, 0]);
  if (end) client.end(message);
  else client.write(message);
}

async function readDestination(
  reader: ByteReader,
  addressType: number,
): Promise<SocksConnectRequest | undefined> {
  let host: string;
  let kind: SocksConnectRequest['addressType'];
  if (addressType === 0x01) {
    host = [...(await reader.read(4))].join('.');
    kind = 'ipv4';
  } else if (addressType === 0x03) {
    const [length] = await reader.read(1);
    host = (await reader.read(length!)).toString('latin1');
    kind = 'domain';
  } else if (addressType === 0x04) {
    const bytes = await reader.read(16);
    host = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');
    kind = 'ipv6';
  } else {
    return undefined;
  }
  const port = (await reader.read(2)).readUInt16BE(0);
  return { host, port, addressType: kind };
}

/** Reads exact byte counts from a socket while the handshake lasts. */
class ByteReader {
  #buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | undefined;
  readonly #socket: Socket;
  readonly #onData = (chunk: Buffer) => {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    this.#wake?.();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#wake?.();
  };

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.once('end', this.#onEnd);
    socket.once('close', this.#onEnd);
  }

  async read(count: number): Promise<Buffer> {
    while (this.#buffer.length < count) {
      if (this.#ended) throw new Error('SOCKS client closed during the handshake');
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
    const bytes = this.#buffer.subarray(0, count);
    this.#buffer = this.#buffer.subarray(count);
    return bytes;
  }

  /** Stops reading and hands back what arrived beyond the handshake. */
  rest(): Buffer {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.pause();
    return this.#buffer;
  }
}
