import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { fetchViaSocks } from './socks-fetch.js';

/*
 * A private Tor network on 127.0.0.1 for tests: three directory
 * authorities, three relays, one tor hosting the onion services and one
 * client with a SOCKS port. Nothing leaves the machine. Every wait watches
 * tor's log or its directory answers; the only sleeps are short polling
 * intervals.
 */

export type OnionServiceSpec = {
  /** Names the service for `onion(name)`; letters, digits and dashes. */
  name: string;
  /** Where port 80 goes: `unix:/absolute/path.sock` or `127.0.0.1:PORT`. */
  target: string;
};

export type TorNetworkOptions = {
  services: OnionServiceSpec[];
  /** Added to every service block after the defence lines of deploy/torrc. */
  hiddenServiceExtraLines?: string[];
  /** Limit for the whole start-up, from keys to a bootstrapped client. */
  startTimeoutMs?: number;
};

const TOR = process.env.TOR_BINARY ?? 'tor';
const TOR_GENCERT = process.env.TOR_GENCERT_BINARY ?? 'tor-gencert';
const DEPLOY_TORRC = findUp('deploy/torrc');

const AUTHORITY_NAMES = ['auth1', 'auth2', 'auth3'];
const RELAY_NAMES = ['relay1', 'relay2', 'relay3'];
const NICKNAMES = [...AUTHORITY_NAMES, ...RELAY_NAMES];
const KEY_CACHE = join(tmpdir(), `stronghold-tor-keys-${process.getuid?.() ?? 'user'}`);
const STOP_GRACE_MS = 3_000;
const POLL_MS = 100;
const CONSENSUS_POLL_MS = 250;

/** The running network. Close it; a process exit also kills every tor. */
export class TorNetwork {
  /** Temporary directory holding every node's configuration and state. */
  readonly dir: string;
  readonly socksPort: number;
  readonly socksUrl: string;
  /** Milliseconds from the start call to the end of each start-up phase. */
  readonly phases: Readonly<Record<string, number>>;
  readonly #group: ProcessGroup;
  readonly #service: TorProcess;
  readonly #onions: ReadonlyMap<string, string>;

  constructor(started: StartedNetwork) {
    this.dir = started.dir;
    this.socksPort = started.socksPort;
    this.socksUrl = `socks5h://127.0.0.1:${started.socksPort}`;
    this.phases = started.phases;
    this.#group = started.group;
    this.#service = started.service;
    this.#onions = started.onions;
  }

  /** Process ids of every tor of the network. */
  get pids(): number[] {
    return this.#group.pids;
  }

  /** The onion host name (`<56 chars>.onion`) of a service. */
  onion(name: string): string {
    const host = this.#onions.get(name);
    if (host === undefined) throw new RangeError(`no onion service named "${name}"`);
    return host;
  }

  /**
   * Resolves once the service's descriptor is stored on an HSDir and an
   * HTTP GET of `/` through the SOCKS port got an HTTP answer, whatever
   * its status. Failed attempts are retried after a short pause until the
   * deadline.
   */
  async waitForOnion(name: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const host = this.onion(name);
    await this.#descriptorStored(host, deadline);

    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        const timeout = Math.max(1, deadline - Date.now());
        await fetchViaSocks(this.socksUrl, `http://${host}/`, { timeoutMs: timeout });
        return;
      } catch (err) {
        lastError = err;
        await delay(POLL_MS);
      }
    }
    throw new Error(`onion "${name}" did not answer within ${timeoutMs} ms`, { cause: lastError });
  }

  /** Stops every tor (SIGTERM, then SIGKILL) and removes the directory. */
  async close(): Promise<void> {
    await this.#group.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The last lines each tor logged, for a failure message. */
  logTail(lines = 15): string {
    return this.#group.logTail(lines);
  }

  /**
   * Waits until the service tor has started uploading this service's
   * descriptor and an HSDir has stored one since. A client asking before
   * then is refused by every HSDir and has to retry.
   */
  async #descriptorStored(host: string, deadline: number): Promise<void> {
    const address = host.replace(/\.onion$/, '');
    const initiated = (line: string): boolean =>
      line.includes('Initiating upload') && line.includes(address);
    const stored = (line: string): boolean =>
      line.includes('Uploaded hidden service descriptor (status 200');

    const at = await this.#service.waitFor(initiated, deadline, `upload of ${host}`);
    await this.#service.waitFor(stored, deadline, `stored descriptor of ${host}`, at);
  }
}

/** What start-up hands to the TorNetwork it creates. */
type StartedNetwork = {
  dir: string;
  socksPort: number;
  phases: Record<string, number>;
  group: ProcessGroup;
  service: TorProcess;
  onions: Map<string, string>;
};

/** What the start-up phases share. */
type Startup = {
  dir: string;
  socksPort: number;
  deadline: number;
  group: ProcessGroup;
  phases: Record<string, number>;
  startedAt: number;
};

/**
 * Starts the network and returns once the client is bootstrapped and every
 * onion service has its address. Use `waitForOnion` before the first
 * request: the descriptor is published a few seconds later.
 */
export async function startTorNetwork(options: TorNetworkOptions): Promise<TorNetwork> {
  checkOptions(options);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      // The ports were free when picked, but they are let go before tor
      // binds them, and another suite's listener may take one in between.
      const raced = String((err as Error).message).includes('Address already in use');
      if (!raced || attempt === PORT_RACE_ATTEMPTS) throw err;
    }
  }
}

const PORT_RACE_ATTEMPTS = 3;

async function startOnce(options: TorNetworkOptions): Promise<TorNetwork> {
  const startedAt = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'stronghold-tor-'));
  await chmod(dir, 0o700);
  const ports = await freePorts(AUTHORITY_NAMES.length * 2 + RELAY_NAMES.length + 1);
  const startup: Startup = {
    dir,
    socksPort: ports.pop()!,
    deadline: startedAt + (options.startTimeoutMs ?? 90_000),
    group: new ProcessGroup(),
    phases: {},
    startedAt,
  };

  try {
    const nodes = await createNodes(dir, ports);
    mark(startup, 'keys');
    await writeFile(join(dir, 'bandwidth'), bandwidthFile(nodes));
    const defences = deployDefenceLines(await readFile(DEPLOY_TORRC, 'utf8'));
    const hsLines = [...defences, ...(options.hiddenServiceExtraLines ?? [])];
    await startCore(startup, nodes);
    return await startEdge(startup, nodes, options.services, hsLines);
  } catch (err) {
    const detail = startup.group.logTail(15);
    await startup.group.stop();
    await rm(dir, { recursive: true, force: true });
    const message = `private Tor network failed to start: ${(err as Error).message}`;
    throw new Error(`${message}\n${detail}`, { cause: err });
  }
}

function mark(startup: Startup, phase: string): void {
  startup.phases[phase] = Date.now() - startup.startedAt;
}

function checkOptions(options: TorNetworkOptions): void {
  if (!Array.isArray(options.services) || options.services.length === 0) {
    throw new TypeError('services must be a non-empty array');
  }
  const names = new Set<string>();
  for (const { name, target } of options.services) {
    if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/.test(name)) {
      throw new RangeError(`services[].name must be letters, digits and dashes, got "${name}"`);
    }
    if (names.has(name)) throw new RangeError(`services[].name "${name}" is used twice`);
    names.add(name);
    // Tor accepts a relative socket path without complaint and never uses it.
    if (!/^(unix:\/\S+|127\.0\.0\.1:\d{1,5})$/.test(target)) {
      throw new RangeError(
        `services[].target must be unix:/absolute/path or 127.0.0.1:PORT, got "${target}"`,
      );
    }
  }
  for (const line of options.hiddenServiceExtraLines ?? []) {
    if (typeof line !== 'string' || /[\r\n]/.test(line)) {
      throw new TypeError('hiddenServiceExtraLines must be single-line strings');
    }
  }
}

/**
 * The per-service lines of the shipped torrc (DoS defences, stream limits)
 * without its HiddenServiceDir and HiddenServicePort, so the network
 * tests the configuration operators deploy.
 */
export function deployDefenceLines(torrc: string): string[] {
  return torrc
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^HiddenService\w+\s/.test(line))
    .filter((line) => !/^HiddenService(Dir|Port)\s/.test(line));
}

// ---------------------------------------------------------------- nodes

type Identity = {
  nickname: string;
  /** RSA identity fingerprint, 40 hex digits. */
  fingerprint: string;
  /** Directory authorities only: the fingerprint of the v3 identity key. */
  v3ident?: string;
};

type Node = Identity & {
  dir: string;
  orPort: number;
  /** Directory authorities only. */
  dirPort?: number;
};

async function createNodes(dir: string, ports: number[]): Promise<Node[]> {
  const keys = await cachedKeySet();
  const nodes: Node[] = [];
  for (const identity of keys.identities) {
    const node: Node = { ...identity, dir: join(dir, identity.nickname), orPort: ports.shift()! };
    if (identity.v3ident !== undefined) node.dirPort = ports.shift()!;
    await copyKeys(join(keys.root, identity.nickname, 'keys'), join(node.dir, 'keys'));
    nodes.push(node);
  }
  return nodes;
}

type KeySet = { root: string; identities: Identity[] };

/**
 * Node keys are made once per machine and reused: an authority's 3072-bit
 * identity key costs about 2 CPU-seconds, more than the rest of the
 * start-up. They are throwaway keys of a network that never leaves
 * 127.0.0.1, and the certificates name no address, so any ports will do.
 * Each set lives in its own directory and is never changed once its
 * identities.json exists, so concurrent test processes can share it; two
 * that find none at once each make one, which is harmless.
 */
async function cachedKeySet(): Promise<KeySet> {
  await mkdir(KEY_CACHE, { recursive: true, mode: 0o700 });
  const found = await findKeySet();
  if (found !== undefined) return found;

  const root = await mkdtemp(join(KEY_CACHE, 'set-'));
  const made = await Promise.all(NICKNAMES.map((nickname) => createIdentity(root, nickname)));
  const expires = Math.min(...made.map((item) => item.expires));
  const identities = made.map((item) => item.identity);
  const index = join(root, 'identities.json');
  await writeFile(`${index}.tmp`, JSON.stringify({ expires, identities }));
  await rename(`${index}.tmp`, index);
  return { root, identities };
}

/** A complete set with a week of validity left; expired sets are removed. */
async function findKeySet(): Promise<KeySet | undefined> {
  for (const name of await readdir(KEY_CACHE)) {
    const root = join(KEY_CACHE, name);
    let index: { expires: number; identities: Identity[] };
    try {
      index = JSON.parse(await readFile(join(root, 'identities.json'), 'utf8'));
    } catch {
      continue;
    }
    if (index.expires < Date.now()) {
      await rm(root, { recursive: true, force: true });
      continue;
    }
    const complete = index.identities.map((item) => item.nickname).join() === NICKNAMES.join();
    if (complete && index.expires > Date.now() + 7 * 86_400_000) {
      return { root, identities: index.identities };
    }
  }
  return undefined;
}

async function createIdentity(
  root: string,
  nickname: string,
): Promise<{ identity: Identity; expires: number }> {
  const dir = join(root, nickname);
  await mkdir(join(dir, 'keys'), { recursive: true, mode: 0o700 });
  const identity: Identity = { nickname, fingerprint: '' };
  let expires = Infinity;
  if (AUTHORITY_NAMES.includes(nickname)) {
    ({ v3ident: identity.v3ident, expires } = await authorityCertificate(join(dir, 'keys')));
  }

  await run(TOR, [
    '--list-fingerprint', '--ignore-missing-torrc', '-f', '/dev/null',
    '--defaults-torrc', '/dev/null', '--DataDirectory', dir,
    '--ORPort', '1', '--Nickname', nickname,
  ]);
  const line = await readFile(join(dir, 'fingerprint'), 'utf8');
  identity.fingerprint = line.trim().split(/\s+/)[1] ?? '';
  return { identity, expires };
}

/** Creates an authority's identity and signing keys and its certificate. */
async function authorityCertificate(keys: string): Promise<{ v3ident: string; expires: number }> {
  const cert = join(keys, 'authority_certificate');
  await run(
    TOR_GENCERT,
    [
      '--create-identity-key', '-m', '12',
      '-i', join(keys, 'authority_identity_key'), '-s', join(keys, 'authority_signing_key'),
      '-c', cert, '--passphrase-fd', '0',
    ],
    '',
  );
  const text = await readFile(cert, 'utf8');
  const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(text)?.[1];
  const expiry = /^dir-key-expires (\S+) (\S+)$/m.exec(text);
  if (v3ident === undefined || expiry === null) throw new Error(`unexpected ${cert}`);
  return { v3ident, expires: Date.parse(`${expiry[1]}T${expiry[2]}Z`) };
}

async function copyKeys(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true, mode: 0o700 });
  for (const name of await readdir(from)) await copyFile(join(from, name), join(to, name));
}

/** Every relay gets the same measured bandwidth, so none is left unused. */
function bandwidthFile(nodes: Node[]): string {
  const lines = [String(Math.floor(Date.now() / 1000))];
  for (const node of nodes) {
    lines.push(`node_id=$${node.fingerprint} bw=1000 nick=${node.nickname}`);
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------- torrc

function commonLines(dir: string, nodes: Node[], nickname: string): string[] {
  const lines = [
    'TestingTorNetwork 1',
    `DataDirectory ${join(dir, nickname)}`,
    `Nickname ${nickname}`,
    'ShutdownWaitLength 0',
    'AssumeReachable 1',
    'PathsNeededToBuildCircuits 0.67',
    'GeoIPFile ""',
    'GeoIPv6File ""',
    // Tor exits by itself if this Node process dies without cleaning up.
    `__OwningControllerProcess ${process.pid}`,
  ];
  for (const auth of nodes.filter((node) => node.v3ident !== undefined)) {
    lines.push(
      `DirAuthority ${auth.nickname} orport=${auth.orPort} no-v2 v3ident=${auth.v3ident} ` +
        `127.0.0.1:${auth.dirPort} ${auth.fingerprint}`,
    );
  }
  return lines;
}

function authorityLines(dir: string, node: Node, startOffset: number): string[] {
  return [
    'Log notice stdout',
    'SocksPort 0',
    'Address 127.0.0.1',
    `ORPort 127.0.0.1:${node.orPort}`,
    `DirPort 127.0.0.1:${node.dirPort}`,
    'ContactInfo stronghold-test@localhost',
    'ExitPolicy reject *:*',
    'AuthoritativeDirectory 1',
    'V3AuthoritativeDirectory 1',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'AuthDirVoteStableGuaranteeMinUptime 0',
    'AuthDirVoteStableGuaranteeMTBF 0',
    'AuthDirFastGuarantee 1',
    `V3BandwidthsFile ${join(dir, 'bandwidth')}`,
    'V3AuthNIntervalsValid 2',
    'TestingV3AuthInitialVotingInterval 10',
    'TestingV3AuthInitialVoteDelay 2',
    'TestingV3AuthInitialDistDelay 2',
    'V3AuthVotingInterval 10',
    'V3AuthVoteDelay 2',
    'V3AuthDistDelay 2',
    `TestingV3AuthVotingStartOffset ${startOffset}`,
  ];
}

function relayLines(node: Node): string[] {
  return [
    'Log notice stdout',
    'SocksPort 0',
    'Address 127.0.0.1',
    `ORPort 127.0.0.1:${node.orPort}`,
    'ContactInfo stronghold-test@localhost',
    'ExitRelay 0',
    'ExitPolicy reject *:*',
  ];
}

function serviceLines(dir: string, services: OnionServiceSpec[], hsLines: string[]): string[] {
  // Descriptor uploads are logged only at info level, in the rend domain,
  // and name the service only with SafeLogging off.
  const lines = [
    'Log [rend]info notice stdout',
    'SafeLogging 0',
    'SocksPort 0',
    'VanguardsLiteEnabled 0',
  ];
  for (const { name, target } of services) {
    lines.push(`HiddenServiceDir ${join(dir, 'services', name)}`);
    lines.push(`HiddenServicePort 80 ${target}`);
    lines.push(...hsLines);
  }
  return lines;
}

function clientLines(socksPort: number): string[] {
  return ['Log notice stdout', `SocksPort 127.0.0.1:${socksPort}`, 'VanguardsLiteEnabled 0'];
}

// ---------------------------------------------------------------- start-up

/**
 * Authorities and relays. Relays that asked for a consensus before there
 * was one back off, so they get a SIGHUP once a consensus lists every
 * node, and the client waits for them: one that asks a relay too early
 * stalls at "Bootstrapped 50%".
 */
async function startCore(startup: Startup, nodes: Node[]): Promise<void> {
  const offset = votingOffset(8);
  const authorities: TorProcess[] = [];
  const relays: TorProcess[] = [];
  for (const node of nodes) {
    const authority = node.v3ident !== undefined;
    const own = authority ? authorityLines(startup.dir, node, offset) : relayLines(node);
    const tor = await launch(startup, nodes, node.nickname, own);
    (authority ? authorities : relays).push(tor);
  }
  await rescheduleVoting(startup, nodes, authorities);

  const dirPort = nodes.find((node) => node.v3ident !== undefined)!.dirPort!;
  await waitForFullConsensus(dirPort, nodes.length, startup.deadline);
  mark(startup, 'consensus');
  for (const relay of relays) relay.signal('SIGHUP');
  await Promise.all(relays.map((tor) => tor.waitForBootstrap(75, startup.deadline)));
  mark(startup, 'relays');
}

/**
 * The first consensus waits for a voting boundary, and an authority fixes
 * its schedule when it starts, which takes one second on an idle machine
 * and five or more on a busy one. An authority that is not up when the
 * votes are due misses the round and everyone waits 10 s more. So once all
 * three are up, the boundary is moved to 7 s from now (votes 3 s from
 * now): a SIGHUP with a new start offset makes tor reschedule.
 */
async function rescheduleVoting(
  startup: Startup,
  nodes: Node[],
  authorities: TorProcess[],
): Promise<void> {
  await Promise.all(authorities.map((tor) => tor.waitForBootstrap(0, startup.deadline)));
  const offset = votingOffset(7);
  for (const node of nodes.filter((item) => item.v3ident !== undefined)) {
    await writeTorrc(startup, nodes, node.nickname, authorityLines(startup.dir, node, offset));
  }
  for (const tor of authorities) tor.signal('SIGHUP');
}

/** The start offset that puts a 10 s voting boundary `ahead` seconds from now. */
function votingOffset(ahead: number): number {
  return (Math.floor(Date.now() / 1000) + ahead) % 10;
}

/** The onion-service tor and the client, once the relays are usable. */
async function startEdge(
  startup: Startup,
  nodes: Node[],
  services: OnionServiceSpec[],
  hsLines: string[],
): Promise<TorNetwork> {
  const { dir, deadline } = startup;
  await mkdir(join(dir, 'services'), { mode: 0o700 });
  const service = await launch(startup, nodes, 'onion', serviceLines(dir, services, hsLines));
  const client = await launch(startup, nodes, 'client', clientLines(startup.socksPort));

  await Promise.all([
    service.waitForBootstrap(100, deadline),
    client.waitForBootstrap(100, deadline),
  ]);
  mark(startup, 'bootstrapped');
  const onions = new Map<string, string>();
  for (const { name } of services) {
    onions.set(name, await readHostname(join(dir, 'services', name), deadline));
  }
  return new TorNetwork({ ...startup, service, onions });
}

async function launch(
  startup: Startup,
  nodes: Node[],
  nickname: string,
  own: string[],
): Promise<TorProcess> {
  await mkdir(join(startup.dir, nickname), { recursive: true, mode: 0o700 });
  const torrc = await writeTorrc(startup, nodes, nickname, own);
  return startup.group.launch(nickname, torrc);
}

async function writeTorrc(
  startup: Startup,
  nodes: Node[],
  nickname: string,
  own: string[],
): Promise<string> {
  const torrc = join(startup.dir, `${nickname}.torrc`);
  const lines = [...commonLines(startup.dir, nodes, nickname), ...own];
  await writeFile(torrc, lines.join('\n') + '\n');
  return torrc;
}

async function readHostname(serviceDir: string, deadline: number): Promise<string> {
  for (;;) {
    try {
      return (await readFile(join(serviceDir, 'hostname'), 'utf8')).trim();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(POLL_MS);
    }
  }
}

/**
 * Waits for a consensus that lists every node as Running. Under load the
 * first one is voted before the relays have uploaded their descriptors and
 * lists only some nodes; relays that bootstrap from it then need two more
 * voting rounds before they can build circuits. The directory port is
 * polled: asking it only when an authority logged "Published ns consensus"
 * found the full consensus one voting round (10 s) later in trials.
 */
async function waitForFullConsensus(
  dirPort: number,
  count: number,
  deadline: number,
): Promise<void> {
  const url = `http://127.0.0.1:${dirPort}/tor/status-vote/current/consensus`;
  let running = 0;
  while (Date.now() < deadline) {
    const consensus = await httpGet(url).catch(() => '');
    running = consensus.match(/^s .*\bRunning\b/gm)?.length ?? 0;
    if (running >= count) return;
    await delay(CONSENSUS_POLL_MS);
  }
  throw new Error(`no consensus listing all ${count} nodes as Running (last: ${running})`);
}

// ---------------------------------------------------------------- processes

/**
 * The tor processes of one network. If this Node process exits without
 * closing the network, the 'exit' handler kills them; if it is killed
 * outright, each tor notices through __OwningControllerProcess and exits.
 */
class ProcessGroup {
  readonly #processes: TorProcess[] = [];
  readonly #killAll = (): void => {
    for (const tor of this.#processes) tor.kill();
  };

  constructor() {
    process.once('exit', this.#killAll);
  }

  get pids(): number[] {
    return this.#processes.map((tor) => tor.pid).filter((pid) => pid !== undefined);
  }

  launch(name: string, torrc: string): TorProcess {
    const tor = new TorProcess(name, torrc);
    this.#processes.push(tor);
    return tor;
  }

  /** SIGTERM to every tor, SIGKILL to any still running after the grace time. */
  async stop(): Promise<void> {
    await Promise.all(this.#processes.map((tor) => tor.stop(STOP_GRACE_MS)));
    process.removeListener('exit', this.#killAll);
  }

  logTail(lines: number): string {
    return this.#processes.map((tor) => tor.tail(lines)).join('\n');
  }
}

type LineTest = (line: string) => boolean;

type Waiter = { test: LineTest; resolve: (index: number) => void; reject: (err: Error) => void };

/** One tor child process whose stdout log can be awaited line by line. */
class TorProcess {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiters = new Set<Waiter>();
  #exit: string | undefined;

  constructor(name: string, torrc: string) {
    this.name = name;
    this.#child = spawn(TOR, ['-f', torrc, '--defaults-torrc', '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => this.#onLine(line));
    createInterface({ input: this.#child.stderr! }).on('line', (line) => this.#onLine(line));
    this.#child.on('error', (err) => this.#onExit(`failed to start: ${err.message}`));
    this.#child.on('exit', (code, signal) => this.#onExit(`exited (${signal ?? code})`));
  }

  /**
   * Resolves with the index of the first line after line `after`, logged
   * already or yet to come, that passes `test`.
   */
  waitFor(test: LineTest, deadline: number, what: string, after = -1): Promise<number> {
    const seen = this.#lines.findIndex((line, index) => index > after && test(line));
    if (seen >= 0) return Promise.resolve(seen);
    if (this.#exit !== undefined) {
      return Promise.reject(new Error(`${this.name} ${this.#exit} before ${what}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`${this.name}: no ${what} in time`));
      }, Math.max(0, deadline - Date.now()));
      const waiter: Waiter = {
        test,
        resolve: (index) => (clearTimeout(timer), resolve(index)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Waits for "Bootstrapped N%" with N at least `percent`; tor may skip some. */
  waitForBootstrap(percent: number, deadline: number): Promise<number> {
    const reached = (line: string): boolean => {
      const logged = /Bootstrapped (\d+)%/.exec(line)?.[1];
      return logged !== undefined && Number(logged) >= percent;
    };
    return this.waitFor(reached, deadline, `Bootstrapped ${percent}%`);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  signal(name: NodeJS.Signals): void {
    if (this.#exit === undefined) this.#child.kill(name);
  }

  /** Immediate SIGKILL; safe inside a process 'exit' handler. */
  kill(): void {
    if (this.#exit === undefined) this.#child.kill('SIGKILL');
  }

  async stop(graceMs: number): Promise<void> {
    if (this.#exit !== undefined) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  tail(count: number): string {
    return this.#lines
      .slice(-count)
      .map((line) => `[${this.name}] ${line}`)
      .join('\n');
  }

  #onLine(line: string): void {
    const index = this.#lines.push(line) - 1;
    for (const waiter of this.#waiters) {
      if (!waiter.test(line)) continue;
      this.#waiters.delete(waiter);
      waiter.resolve(index);
    }
  }

  #onExit(reason: string): void {
    if (this.#exit !== undefined) return;
    this.#exit = reason;
    for (const waiter of this.#waiters) waiter.reject(new Error(`${this.name} ${reason}`));
    this.#waiters.clear();
  }
}

// ---------------------------------------------------------------- helpers

/**
 * Ports the kernel hands out for port 0, all held open together so none
 * repeats, then released for tor to bind.
 */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject).listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

function run(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${command} exited with ${code}: ${output.slice(-500)}`));
    });
    child.stdin.end(input ?? '');
  });
}

/** The body of a 200 answer; anything else is an error. */
function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get(url, { timeout: 2_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        if (response.statusCode === 200) resolve(body);
        else reject(new Error(`${url} answered ${response.statusCode}`));
      });
    });
    request.on('timeout', () => request.destroy(new Error(`${url} timed out`)));
    request.on('error', reject);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A file of the repository, found from this module's directory upwards:
 * the bench runs this module compiled under dist/, the tests from test/.
 */
function findUp(relative: string): string {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    dir = join(dir, '..');
  }
  throw new Error(`${relative} not found above ${fileURLToPath(import.meta.url)}`);
}
