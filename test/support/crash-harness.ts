import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, onTestFinished } from 'vitest';

import { DATABASE_FILE } from '../../src/service.js';
import { openDatabase } from '../../src/storage/database.js';
import { loadSecret } from '../../src/tickets/secrets.js';
import { type RecordedWalletOptions, RecordedWalletRpc, type Recording } from './recorded-wallet-rpc.js';

/*
 * The compiled service as a child process, the way an operator runs it:
 * `node <build>/src/cli.js <command>` with its settings in STRONGHOLD_*
 * variables.
 *
 * The build is this test file's own, not dist/: other test runs in the same
 * tree rebuild dist/ at any moment, and a child that starts while tsc is
 * rewriting a file reads half of it. The private build lives under
 * node_modules/.cache so that packages resolve as from dist/, with
 * schema.sql beside it, and is removed once the test file is done.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILD_PREFIX = 'stronghold-hardening-';
/** No test file runs this long; a build older than this belongs to no one. */
const STALE_BUILD_MS = 30 * 60_000;
let build: Promise<string> | undefined;
let builtIn: string | undefined;

// Registered on the importing test file: its build goes when its tests are done.
afterAll(() => {
  if (builtIn) rmSync(builtIn, { recursive: true, force: true });
});

/** The compiled cli.js of a build made once per test process. */
export function cliPath(): Promise<string> {
  build ??= buildPrivately();
  return build;
}

async function buildPrivately(): Promise<string> {
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  removeStaleBuilds(cache);
  const outDir = mkdtempSync(join(cache, BUILD_PREFIX));
  builtIn = outDir;
  const tsc = spawn(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(ROOT, 'tsconfig.json'),
      '--outDir',
      outDir,
    ],
    { stdio: 'ignore' },
  );
  await once(tsc, 'exit');
  copyFileSync(join(ROOT, 'schema.sql'), join(outDir, 'schema.sql'));
  const cli = join(outDir, 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`the private build did not produce ${cli}`);
  return cli;
}

export type Settings = Record<string, string | number | boolean>;

/** The parent's environment without any STRONGHOLD_ variable, plus `settings`. */
export function serviceEnv(settings: Settings): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('STRONGHOLD_')) env[name] = value;
  }
  for (const [key, value] of Object.entries(settings)) {
    env[`STRONGHOLD_${key.toUpperCase()}`] = String(value);
  }
  return env;
}

/** Builds left by test processes that were killed before their exit handler ran. */
function removeStaleBuilds(cache: string): void {
  const stale = Date.now() - STALE_BUILD_MS;
  for (const name of readdirSync(cache)) {
    const dir = join(cache, name);
    if (name.startsWith(BUILD_PREFIX) && statSync(dir).mtimeMs < stale) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export type ServiceProcessOptions = {
  settings: Settings;
  /** Flags for node itself, before the script (e.g. `--import` of a preload). */
  nodeArgs?: string[];
  /** More environment variables, for such a preload. */
  env?: Record<string, string>;
  /** How long to wait for the `listening` log line. */
  startTimeoutMs?: number;
};

/**
 * `stronghold serve` in a child process. Its log (JSON lines on stdout) is
 * kept; `start` resolves once the service logs that it is listening.
 */
export class ServiceProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<Exit>;
  publicUrl = '';
  internalUrl = '';
  #stderr = '';

  private constructor(child: ChildProcess) {
    this.child = child;
    this.exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    let partial = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      const parts = (partial + text).split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts.filter((line) => line.length > 0));
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.#stderr += text));
  }

  static async start(options: ServiceProcessOptions): Promise<ServiceProcess> {
    const cli = await cliPath();
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), cli, 'serve'], {
      env: { ...serviceEnv(options.settings), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const service = new ServiceProcess(child);
    await service.#waitListening(options.startTimeoutMs ?? 60_000);
    return service;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Every log line as an object. */
  records(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Resolves with how the process ended; rejects if it runs past `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #waitListening(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => l.includes('"msg":"listening"'));
      if (line) {
        const record = JSON.parse(line) as { public: string; internal: string };
        this.publicUrl = `http://${record.public}`;
        this.internalUrl = `http://${record.internal}`;
        return;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > deadline) {
        this.kill('SIGKILL');
        throw new Error(
          `the service did not start listening:\n${this.#stderr}${this.lines.join('\n')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * `stronghold serve` polling a recorded wallet whose chain grows as `chain`
 * says, on ephemeral ports, one worker, polling every 50 ms unless
 * `settings` say otherwise. Both stop when the test ends.
 */
export async function serveRecordedWallet(
  recording: Recording,
  chain: RecordedWalletOptions,
  settings: Settings,
): Promise<{ service: ServiceProcess; wallet: RecordedWalletRpc }> {
  const wallet = await RecordedWalletRpc.start(recording, chain);
  onTestFinished(() => wallet.close());
  const service = await ServiceProcess.start({
    settings: {
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      poll_interval_ms: 50,
      workers: 1,
      ...settings,
      wallet_rpc_url: wallet.url,
    },
  });
  onTestFinished(() => service.kill('SIGKILL'));
  return { service, wallet };
}

export type CliResult = { code: number | null; stdout: string; stderr: string };

/** Runs one `stronghold` command to its end. */
export async function runCli(
  args: string[],
  settings: Settings,
  timeoutMs = 60_000,
): Promise<CliResult> {
  const child = spawn(process.execPath, [await cliPath(), ...args], {
    env: serviceEnv(settings),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Opens a database file read-only, runs `read` on it and closes it. */
export function readDatabase<T>(file: string, read: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.defaultSafeIntegers(true);
    return read(db);
  } finally {
    db.close();
  }
}

/** Every row of every table, in a fixed order: equal strings mean equal contents. */
export function tableContents(db: Database.Database): string {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .pluck()
    .all() as string[];
  const parts: string[] = [];
  for (const table of tables) {
    const rows = db.prepare(`SELECT * FROM "${table}" ORDER BY rowid`).raw().all();
    parts.push(`${table}:${JSON.stringify(rows, replacer)}`);
  }
  return parts.join('\n');
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer') {
    return Buffer.from((value as { data: number[] }).data).toString('hex');
  }
  return value;
}

/**
 * Records a confirmed ticket payment to `pid` in the database of
 * `dataDir`, creating the database and the secret as the service would,
 * for a service started on it afterwards.
 */
export function seedConfirmedPayment(dataDir: string, pid: string, amount: bigint): void {
  const secrets = loadSecret(join(dataDir, 'secret.key'));
  const db = openDatabase(join(dataDir, DATABASE_FILE));
  try {
    db.prepare(
      `INSERT INTO payments (txid, subaddr_major, subaddr_minor, pid_tag, amount, height, state,
         required_confirmations, first_seen_at, confirmed_at)
       VALUES (?, 0, 0, ?, ?, 100, 'confirmed', 10, 1700000000, 1700000000)`,
    ).run(randomBytes(32).toString('hex'), secrets.pidTag(Buffer.from(pid, 'hex')), amount);
  } finally {
    db.close();
  }
}
