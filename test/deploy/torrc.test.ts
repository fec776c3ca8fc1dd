import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { DEFAULTS, loadConfig } from '../../src/config/config.js';

const execTor = promisify(execFile);

/** Runs tor and returns its exit code and output instead of throwing. */
async function verify(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execTor('tor', args);
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}
function deploy(name: string): string {
  return fileURLToPath(new URL(`../../deploy/${name}`, import.meta.url));
}

/** Settings whose example value differs from the default, on purpose. */
const PRODUCTION_VALUES = {
  data_dir: '/var/lib/stronghold',
  public_listen: 'unix:/run/stronghold/public.sock',
  internal_listen: 'unix:/var/lib/stronghold/internal.sock',
  outbound_proxy: 'socks5h://127.0.0.1:9050',
  tor_only: true,
  workers: 1,
};

describe('deploy/torrc', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stronghold-torrc-'));
    await chmod(dir, 0o700);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes tor --verify-config with its paths moved into a temporary directory', async () => {
    const shipped = await readFile(deploy('torrc'), 'utf8');
    const moved = shipped
      .replace('HiddenServiceDir /var/lib/tor/stronghold/', `HiddenServiceDir ${dir}/hs/`)
      .replace('unix:/run/stronghold/public.sock', `unix:${dir}/public.sock`)
      .replace('SocksPort 127.0.0.1:9050', 'SocksPort 127.0.0.1:auto');
    const options = moved.split('\n').filter((line) => !line.startsWith('#'));
    expect(options.join('\n')).not.toMatch(/\/var\/lib\/tor|\/run\/stronghold|:9050/);
    const torrc = join(dir, 'torrc');
    await writeFile(torrc, moved);

    const args = ['--verify-config', '-f', torrc, '--defaults-torrc', '/dev/null'];
    const result = await verify([...args, '--DataDirectory', join(dir, 'data')]);

    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('Configuration was valid');
  });

  it('turns on the introduction-point DoS defence and the proof-of-work defence', async () => {
    const torrc = await readFile(deploy('torrc'), 'utf8');

    expect(torrc).toMatch(/^HiddenServiceEnableIntroDoSDefense 1$/m);
    expect(torrc).toMatch(/^HiddenServicePoWDefensesEnabled 1$/m);
    expect(torrc).toMatch(/^HiddenServiceMaxStreamsCloseCircuit 1$/m);
  });

  it('forwards the onion port to an absolute unix socket', async () => {
    const torrc = await readFile(deploy('torrc'), 'utf8');

    expect(torrc).toMatch(/^HiddenServicePort 80 unix:\/run\/stronghold\/public\.sock$/m);
  });
});

describe('deploy/config.example.json', () => {
  const file = deploy('config.example.json');

  it('has exactly the settings of DEFAULTS', async () => {
    const example = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;

    expect(Object.keys(example).sort()).toEqual(Object.keys(DEFAULTS).sort());
  });

  it('keeps every default except the documented production values', async () => {
    const example = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const expected: Record<string, unknown> = { ...DEFAULTS, ...PRODUCTION_VALUES };

    expect(example).toEqual(expected);
  });

  it('loads through loadConfig without error', () => {
    const config = loadConfig({ file, env: {} });

    expect(config.public_listen).toBe('unix:/run/stronghold/public.sock');
    expect(config.tor_only).toBe(true);
    expect(config.secret_file).toBe('/var/lib/stronghold/secret.key');
  });

  it('has a row in the README settings table for every setting', async () => {
    const readme = await readFile(deploy('README.md'), 'utf8');

    for (const key of Object.keys(DEFAULTS)) expect(readme).toContain(`| \`${key}\` |`);
  });
});
