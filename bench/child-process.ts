import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** A child ended before it wrote the message the bench was waiting for. */
export class ChildExitedError extends Error {
  override readonly name = 'ChildExitedError';
}

/** USER_HZ: /proc reports CPU times in these units on every Linux. */
const CLOCK_TICKS_PER_S = 100;

export type ChildOptions = {
  /** Short name used in error messages. */
  label: string;
  /** Compiled script to run with this node binary. */
  script: string;
  args?: string[];
  /** Flags for node itself, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
};

/**
 * A node process the bench started. Its stdout carries one JSON message per
 * line (ports, results); its stderr passes straight through to ours, which
 * is where progress and the child's own warnings belong.
 */
export class Child {
  readonly label: string;
  readonly #process: ChildProcess;
  readonly #messages: string[] = [];
  readonly #waiting: ((line: string | undefined) => void)[] = [];
  readonly #exited: Promise<number | null>;
  #exitCode: number | null | undefined;

  constructor(options: ChildOptions) {
    this.label = options.label;
    const args = [...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])];
    this.#process = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.#process.stdout! }).on('line', (line) => this.#deliver(line));
    this.#exited = new Promise((resolve) => {
      this.#process.once('exit', (code) => {
        this.#exitCode = code;
        for (const waiter of this.#waiting.splice(0)) waiter(undefined);
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.#process.pid!;
  }

  /** The next JSON line the child writes; rejects if it exits first or takes too long. */
  async nextMessage<T>(timeoutMs: number): Promise<T> {
    const line = this.#messages.shift() ?? (await this.#nextLine(timeoutMs));
    if (line === undefined) {
      throw new ChildExitedError(`${this.label} exited with code ${this.#exitCode} before answering`);
    }
    return JSON.parse(line) as T;
  }

  /** Resident set size of the child right now, from /proc (Linux only). */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    if (!match) throw new Error(`no VmRSS line for ${this.label}`);
    return Number(match[1]) * 1024;
  }

  /**
   * CPU time the child (all its threads) has used so far, in seconds, from
   * /proc. On a shared machine this is steadier than any rate: a process
   * that waits for a core uses no CPU while it waits.
   */
  cpuSeconds(): number {
    return cpuSecondsOf(`/proc/${this.pid}/stat`);
  }

  /**
   * CPU time of the child's main thread alone (its thread id is its pid):
   * what the event loop spent, without the worker pool and V8's helpers.
   */
  mainThreadCpuSeconds(): number {
    return cpuSecondsOf(`/proc/${this.pid}/task/${this.pid}/stat`);
  }

  /** Waits for the child to end on its own. */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#exitCode !== undefined) return;
    this.#process.kill('SIGTERM');
    const timer = setTimeout(() => this.#process.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  #deliver(line: string): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(line);
    else this.#messages.push(line);
  }

  #nextLine(timeoutMs: number): Promise<string | undefined> {
    if (this.#exitCode !== undefined) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(done), 1);
        reject(new Error(`${this.label} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (line: string | undefined) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiting.push(done);
    });
  }
}

/**
 * Every child one bench run started, so that an error or Ctrl-C anywhere
 * still stops them all.
 */
export class ChildGroup {
  readonly #children = new Set<Child>();

  start(options: ChildOptions): Child {
    const child = new Child(options);
    this.#children.add(child);
    void child.exited().then(() => this.#children.delete(child));
    return child;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#children].map((child) => child.stop(2_000)));
  }

  /** Last resort on process exit: no waiting is possible there. */
  killAll(): void {
    for (const child of this.#children) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

function cpuSecondsOf(statFile: string): number {
  const stat = readFileSync(statFile, 'utf8');
  // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}
