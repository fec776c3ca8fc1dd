import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Debian's Chromium, run headless once per question (a screenshot, a DOM
 * dump, the console), each time with a fresh profile so that nothing
 * carries over between runs. CI runs as root, hence `--no-sandbox`.
 */

export const CHROMIUM_PATH = '/usr/bin/chromium';

const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
  '--force-device-scale-factor=1',
];

export type RunOptions = {
  /**
   * Let pages run JavaScript. Off by default, like Tor Browser at its
   * "Safest" level.
   */
  scripts?: boolean;
  /** The run is killed, and the call fails, after this long. */
  timeoutMs?: number;
};

export type ViewportSize = { width: number; height: number };

type RunResult = { stdout: string; stderr: string };

const DEFAULT_TIMEOUT_MS = 30_000;

/** Throws, saying how to install it, when Debian's Chromium is missing. */
export function assertChromium(): void {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `${CHROMIUM_PATH} not found: the browser tests need Debian's Chromium. ` +
        'Install it with `apt-get install -y chromium` (.ci/run does this in CI).',
    );
  }
}

/** The viewport of `url` at the given size, as PNG bytes. */
export async function screenshot(
  url: string,
  size: ViewportSize,
  options: RunOptions = {},
): Promise<Buffer> {
  return withProfile(options, async (profileDir) => {
    const file = join(profileDir, 'screenshot.png');
    await runChromium(
      [`--screenshot=${file}`, `--window-size=${size.width},${size.height}`, url],
      profileDir,
      options,
    );
    return readFile(file);
  });
}

/** The DOM of `url` after it loaded, serialised as HTML. */
export async function dumpDom(url: string, options: RunOptions = {}): Promise<string> {
  return withProfile(options, async (profileDir) => {
    const { stdout } = await runChromium(['--dump-dom', url], profileDir, options);
    return stdout;
  });
}

/**
 * What the page wrote to its console while loading, Content Security
 * Policy violations included: Chromium logs those there, and with
 * `--enable-logging=stderr` the console reaches stderr.
 */
export async function consoleMessages(url: string, options: RunOptions = {}): Promise<string[]> {
  return withProfile(options, async (profileDir) => {
    const flags = ['--enable-logging=stderr', '--v=0', '--dump-dom', url];
    const { stderr } = await runChromium(flags, profileDir, options);
    return stderr.split('\n').filter((line) => line.includes(':CONSOLE'));
  });
}

async function withProfile<T>(
  options: RunOptions,
  body: (profileDir: string) => Promise<T>,
): Promise<T> {
  assertChromium();
  const profileDir = await mkdtemp(join(tmpdir(), 'stronghold-chromium-'));
  try {
    // The `--blink-settings=scriptEnabled=false` switch also stops Chromium's
    // own --dump-dom and --screenshot from working (they print nothing), so
    // JavaScript is turned off the way a user would: a profile preference.
    if (options.scripts !== true) {
      await mkdir(join(profileDir, 'Default'));
      const prefs = { profile: { default_content_setting_values: { javascript: 2 } } };
      await writeFile(join(profileDir, 'Default', 'Preferences'), JSON.stringify(prefs));
    }
    return await body(profileDir);
  } finally {
    await rm(profileDir, { recursive: true, force: true });
  }
}

function runChromium(
  args: string[],
  profileDir: string,
  options: RunOptions,
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const argv = [...BASE_FLAGS, `--user-data-dir=${profileDir}`, ...args];

  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout takes the renderer, GPU
    // and utility children down with the browser.
    const child = spawn(CHROMIUM_PATH, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));

    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`chromium did not finish within ${timeoutMs} ms: ${args.join(' ')}`));
    }, timeoutMs);

    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = {
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      };
      if (code === 0) resolve(result);
      else {
        const tail = result.stderr.split('\n').slice(-15).join('\n');
        reject(new Error(`chromium exited with ${code ?? signal}: ${args.join(' ')}\n${tail}`));
      }
    });
  });
}
