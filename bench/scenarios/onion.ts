import http from 'node:http';
import type { Duplex } from 'node:stream';

import { SocksClient } from 'socks';

import { startTorNetwork } from '../../test/support/tor-network.js';
import type { Harness } from '../harness.js';
import { makeRow, type Scenario } from '../scenario.js';
import { basePayments, repeatSetSize, seededService } from './seeded-service.js';

/** Concurrent clients over Tor; a private network on two cores carries few. */
const CLIENTS = 20;

type Sample = { rps: number; p50_ms: number; p99_ms: number; errors: number; requests: number };

/**
 * redeem-repeat and token-status requests, alternating, through a private
 * Tor network to the service's onion address, and the same client against
 * the service on loopback in the same run. Behind Tor the network, not the
 * process, is the bottleneck: the row's ratio is loopback throughput over
 * onion throughput, the capacity left over when Tor is the only way in.
 */
export const onion: Scenario = {
  name: 'onion',
  async run(harness: Harness) {
    const { service, seeded } = await seededService(harness, 'onion', (db) => {
      const pids = db.addPayments(basePayments(harness), repeatSetSize(harness));
      return { pids, tokens: db.claim(pids) };
    });
    const port = Number(new URL(service.publicUrl).port);
    harness.progress('onion: starting a private Tor network (about 20 s)');
    const network = await startTorNetwork({ services: [{ name: 'stronghold', target: `127.0.0.1:${port}` }] });
    try {
      await network.waitForOnion('stronghold', 120_000);
      const requests = mixedRequests(seeded.pids, seeded.tokens);
      const durationMs = harness.options.durationS * 1000;

      harness.progress(`onion: loopback, ${CLIENTS} clients, ${harness.options.durationS} s`);
      const loopback = await drive(directAgent(), `127.0.0.1:${port}`, requests, durationMs);
      harness.progress(`onion: through Tor, ${CLIENTS} clients, ${harness.options.durationS} s`);
      const socks = new URL(network.socksUrl);
      const overTor = await drive(
        socksAgent(socks.hostname, Number(socks.port)),
        network.onion('stronghold'),
        requests,
        durationMs,
      );

      const ratio = overTor.rps > 0 ? loopback.rps / overTor.rps : Infinity;
      return {
        row: makeRow({
          name: 'onion',
          target: { op: '>=', value: 1 },
          load: { rps: overTor.rps, p50_ms: overTor.p50_ms, p99_ms: overTor.p99_ms, errors: overTor.errors },
          limit: 'loopback req/s, same client (ratio = loopback / onion)',
          limitValue: loopback.rps,
          ratio,
          rssBytes: service.child.rssBytes(),
        }),
        details: { clients: CLIENTS, loopback, onion: overTor, tor_phases_ms: network.phases },
      };
    } finally {
      await network.close();
      await service.child.stop();
    }
  },
};

type Request = { method: 'GET' | 'POST'; path: string; body?: string };

function mixedRequests(pids: readonly string[], tokens: readonly string[]): Request[] {
  const requests: Request[] = [];
  for (let i = 0; i < Math.min(pids.length, tokens.length); i++) {
    requests.push({ method: 'POST', path: '/api/v1/redeem', body: JSON.stringify({ pid: pids[i] }) });
    requests.push({ method: 'GET', path: `/api/v1/token/${tokens[i]}` });
  }
  return requests;
}

function directAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
}

/**
 * An agent whose connections are SOCKS5 streams through Tor, kept alive
 * and reused as a browser reuses its connection to an onion site.
 */
function socksAgent(host: string, port: number): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const connect = (
    options: { host?: string | null; port?: number | string | null },
    done: (err: Error | null, socket?: Duplex) => void,
  ) => {
    SocksClient.createConnection({
      proxy: { host, port, type: 5 },
      command: 'connect',
      destination: { host: String(options.host), port: Number(options.port ?? 80) },
      timeout: 60_000,
    }).then(({ socket }) => done(null, socket), (err: Error) => done(err));
  };
  (agent as unknown as { createConnection: typeof connect }).createConnection = connect;
  return agent;
}

async function drive(agent: http.Agent, host: string, requests: Request[], durationMs: number): Promise<Sample> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + durationMs;

  const client = async () => {
    while (performance.now() < deadline) {
      const request = requests[next++ % requests.length]!;
      const at = performance.now();
      const status = await send(agent, host, request).catch(() => 0);
      if (status === 200) latencies.push(performance.now() - at);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  agent.destroy();

  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    rps: latencies.length / elapsed,
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    errors,
    requests: latencies.length + errors,
  };
}

function send(agent: http.Agent, host: string, request: Request): Promise<number> {
  const [hostname, port] = host.includes(':') ? host.split(':') : [host, '80'];
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: hostname,
        port: Number(port),
        method: request.method,
        path: request.path,
        headers: request.body ? { 'content-type': 'application/json' } : {},
        timeout: 60_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(request.body);
  });
}
