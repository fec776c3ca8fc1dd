import { generateKeyPairSync, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fetchViaSocks, SocksFetchError } from '../support/socks-fetch.js';
import { startTorNetwork, type TorNetwork } from '../support/tor-network.js';

/** Answers with where it listens and what it was asked, in two chunks. */
function echo(label: string): RequestListener {
  return (request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      response.setHeader('content-type', 'text/plain');
      response.write(`${label} ${request.method} ${request.url}`);
      response.end(body === '' ? '' : ` ${body}`);
    });
  };
}

function listen(server: Server, where: string | number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof where === 'string') server.listen(where, () => resolve(server));
    else server.listen(where, '127.0.0.1', () => resolve(server));
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
}

/** A well-formed v3 address (rend-spec-v3 section 6) that nobody serves. */
function unpublishedOnion(): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
  const key = der.subarray(der.length - 32);
  const version = Buffer.from([3]);
  const checksum = createHash('sha3-256')
    .update(Buffer.concat([Buffer.from('.onion checksum'), key, version]))
    .digest()
    .subarray(0, 2);
  return `${base32(Buffer.concat([key, checksum, version]))}.onion`;
}

function base32(data: Buffer): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const byte of data) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return out;
}

describe('startTorNetwork', () => {
  it('rejects a relative unix socket path, which tor would accept and never use', async () => {
    await expect(
      startTorNetwork({ services: [{ name: 'a', target: 'unix:relative.sock' }] }),
    ).rejects.toThrow(/services\[\]\.target/);
  });

  it('rejects two services with the same name', async () => {
    const target = '127.0.0.1:9';
    await expect(
      startTorNetwork({ services: [{ name: 'a', target }, { name: 'a', target }] }),
    ).rejects.toThrow(/used twice/);
  });
});

describe('private Tor network', () => {
  let dir: string;
  let unixServer: Server | undefined;
  let tcpServer: Server | undefined;
  let network: TorNetwork;
  let startedAt: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stronghold-tor-e2e-'));
    const socket = join(dir, 'public.sock');
    unixServer = await listen(createServer(echo('unix')), socket);
    tcpServer = await listen(createServer(echo('tcp')), 0);
    const { port } = tcpServer.address() as { port: number };

    startedAt = Date.now();
    network = await startTorNetwork({
      services: [
        { name: 'stronghold', target: `unix:${socket}` },
        { name: 'receiver', target: `127.0.0.1:${port}` },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await network?.close();
    await Promise.all([closeServer(unixServer), closeServer(tcpServer)]);
    await rm(dir, { recursive: true, force: true });
  });

  it('puts the defence lines of deploy/torrc into every service block', async () => {
    const torrc = await readFile(join(network.dir, 'onion.torrc'), 'utf8');

    expect(torrc.match(/^HiddenServiceEnableIntroDoSDefense 1$/gm)).toHaveLength(2);
    expect(torrc.match(/^HiddenServicePoWDefensesEnabled 1$/gm)).toHaveLength(2);
  });

  it('reaches a unix-socket backend through its onion address', async () => {
    await network.waitForOnion('stronghold', 60_000);
    const firstFetchMs = Date.now() - startedAt;
    console.info(`tor network: first fetch ${firstFetchMs} ms after start`, network.phases);

    const url = `http://${network.onion('stronghold')}/api/v1/info?x=1`;
    const response = await fetchViaSocks(network.socksUrl, url);

    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain');
    expect(response.body).toBe('unix GET /api/v1/info?x=1');
  }, 90_000);

  it('reaches a TCP backend on a second onion of the same tor, with a request body', async () => {
    await network.waitForOnion('receiver', 60_000);
    const url = `http://${network.onion('receiver')}/hook`;

    const response = await fetchViaSocks(network.socksUrl, url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"event":"paid"}',
    });

    expect(network.onion('receiver')).not.toBe(network.onion('stronghold'));
    expect(response.status).toBe(200);
    expect(response.body).toBe('tcp POST /hook {"event":"paid"}');
  }, 90_000);

  it('fails fast with SOCKS reply 4 for an onion nobody publishes', async () => {
    const started = Date.now();

    const error = await fetchViaSocks(network.socksUrl, `http://${unpublishedOnion()}/`).catch(
      (err: unknown) => err,
    );
    const elapsedMs = Date.now() - started;
    console.info(`tor network: missing onion refused after ${elapsedMs} ms`);

    expect(error).toBeInstanceOf(SocksFetchError);
    expect((error as SocksFetchError).code).toBe('socks_rejected');
    expect((error as SocksFetchError).socksReply).toBe(4);
    expect(elapsedMs).toBeLessThan(10_000);
  }, 30_000);

  it('close() stops every tor and removes the directory', async () => {
    const pids = network.pids;
    await network.close();

    expect(pids).toHaveLength(8);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(existsSync(network.dir)).toBe(false);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(network.socksPort, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(false)));
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  }, 30_000);
});
