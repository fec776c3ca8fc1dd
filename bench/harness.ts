import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import type { ConfigInput } from '../src/config/config.js';
import { Child, ChildExitedError, ChildGroup } from './child-process.js';
import type { Server } from './http-measure.js';
import type { LimitRoute } from './limit-server.js';
import type { LoadJob, LoadResult } from './load-child.js';
import type { BenchOptions } from './options.js';
import type { ServeMessage } from './serve-child.js';

const START_TIMEOUT_MS = 120_000;
const RETRY_DELAY_MS = 2_000;

/** A running service child and where to reach it. */
export type ServiceProcess = {
  child: Child;
  /** The public listener as a load target. */
  server: Server;
  publicUrl: string;
  internalUrl: string;
  /** From just before Service.start to the listeners being open, in ms. */
  startMs: number;
  startedAt: number;
};

function script(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

/**
 * What every scenario needs: the options, a scratch directory, the child
 * processes (service, limit server, load generators) and progress lines.
 * Closing it stops every child and removes the scratch directory.
 */
export class Harness {
  readonly options: BenchOptions;
  readonly #children = new ChildGroup();
  readonly #workDir: string;
  #jobs = 0;

  constructor(options: BenchOptions) {
    this.options = options;
    this.#workDir = mkdtempSync(join(tmpdir(), 'stronghold-bench-'));
  }

  /** A new empty directory inside the scratch directory. */
  dir(name: string): string {
    const path = join(this.#workDir, `${name}-${++this.#jobs}`);
    mkdirSync(path, { recursive: true });
    return path;
  }

  /** Writes `lines` to a scratch file and returns its path. */
  listFile(name: string, lines: readonly string[]): string {
    const path = join(this.dir(name), 'list.txt');
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  }

  progress(message: string): void {
    process.stderr.write(`${message}\n`);
  }

  async startService(label: string, overrides: ConfigInput): Promise<ServiceProcess> {
    const config: ConfigInput = {
      public_listen: '127.0.0.1:0',
      internal_listen: '127.0.0.1:0',
      log_level: 'error',
      workers: this.options.workers,
      cache_max_entries: this.options.cacheEntries,
      ...overrides,
    };
    const { child, message } = await this.#answer<ServeMessage>(
      `service (${label})`,
      'serve-child',
      [JSON.stringify(config)],
      START_TIMEOUT_MS,
    );
    const publicUrl = `http://127.0.0.1:${message.public}`;
    return {
      child,
      server: { url: publicUrl, child },
      publicUrl,
      internalUrl: `http://127.0.0.1:${message.internal}`,
      startMs: message.readyAt - message.startedAt,
      startedAt: message.startedAt,
    };
  }

  async startLimitServer(route: LimitRoute): Promise<{ child: Child; url: string }> {
    const { child, message } = await this.#answer<{ port: number }>(
      'bare hono limit server',
      'limit-server',
      [JSON.stringify(route)],
      START_TIMEOUT_MS,
    );
    return { child, url: `http://127.0.0.1:${message.port}` };
  }

  /**
   * Runs one load child to completion and returns what it measured; with
   * `server`, also the CPU time the server spent meanwhile.
   */
  async drive(job: LoadJob, server?: Child): Promise<LoadResult> {
    const file = join(this.dir('job'), 'job.json');
    writeFileSync(file, JSON.stringify(job));
    // An `amount` run has no fixed length; allow it a generous one.
    const budgetS = job.amount ? Math.max(600, job.amount / 500) : (job.durationS ?? 10) + 60;
    const cpuBefore = server?.cpuSeconds();
    const mainBefore = server?.mainThreadCpuSeconds();
    const { message: result } = await this.#answer<LoadResult>(
      `load generator (${job.label})`,
      'load-child',
      [file],
      budgetS * 1_000,
    );
    if (server && cpuBefore !== undefined) {
      result.serverCpuS = server.cpuSeconds() - cpuBefore;
      result.serverCpuUsPerRequest = (result.serverCpuS * 1e6) / Math.max(1, result.requests);
      const mainS = server.mainThreadCpuSeconds() - (mainBefore ?? 0);
      result.serverMainThreadCpuUsPerRequest = (mainS * 1e6) / Math.max(1, result.requests);
    }
    return result;
  }

  /**
   * Starts a child and waits for its message. A child that dies before it
   * answers is started once more: in a working tree where someone runs tsc,
   * a child can load a compiled file while it is being rewritten.
   */
  async #answer<T>(label: string, name: string, args: string[], timeoutMs: number) {
    for (let attempt = 1; ; attempt++) {
      const child = this.#start(label, name, args);
      try {
        return { child, message: await child.nextMessage<T>(timeoutMs) };
      } catch (err) {
        if (attempt > 1 || !(err instanceof ChildExitedError)) throw err;
        this.progress(`  ${label} exited before answering; starting it again`);
        await sleep(RETRY_DELAY_MS);
      }
    }
  }

  /** Starts a child; with --cpu-prof each one profiles into a directory named after it. */
  #start(label: string, name: string, args: string[]): Child {
    const profiles = this.options.cpuProfDir;
    const dir = profiles && join(profiles, `${String(++this.#jobs).padStart(3, '0')}-${label.replace(/[^\w.-]+/g, '-')}`);
    return this.#children.start({
      label,
      script: script(name),
      args,
      nodeArgs: dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [],
    });
  }

  async close(): Promise<void> {
    await this.#children.close();
    rmSync(this.#workDir, { recursive: true, force: true });
  }

  /** For process exit handlers, where nothing can be awaited. */
  killChildren(): void {
    this.#children.killAll();
  }
}
