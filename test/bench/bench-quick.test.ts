import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { SCENARIO_NAMES } from '../../bench/options.js';
import { tempDir } from '../support/temp-service.js';

type Run = { code: number | null; stdout: string; stderr: string };

/** Runs the compiled bench (dist/ is built by the global setup) with `args`. */
function bench(args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['dist/bench/run.js', ...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
      },
    );
  });
}

const ROW_KEYS = ['name', 'rps', 'p50_ms', 'p99_ms', 'errors', 'limit', 'limit_value', 'ratio', 'target', 'met'];

describe('npm run bench -- --quick', () => {
  it('runs every scenario and rewrites latest.json in the shape scripts read', async () => {
    const out = tempDir();

    const run = await bench(['--quick', '--out', out], 170_000);

    expect(run.stderr).not.toMatch(/failed:/);
    expect(run.code).toBe(0);
    const latest = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    expect(Object.keys(latest)).toEqual(expect.arrayContaining(['machine', 'scenarios']));
    expect(latest.machine).toMatchObject({ cores: expect.any(Number), cpu: expect.any(String) });
    expect(latest.scenarios.map((row: { name: string }) => row.name)).toEqual([...SCENARIO_NAMES]);
    for (const row of latest.scenarios) {
      expect(Object.keys(row)).toEqual(expect.arrayContaining(ROW_KEYS));
      expect(row.rps).toBeGreaterThan(0);
      expect(row.p50_ms === null || row.p50_ms >= 0).toBe(true);
      expect(row.p99_ms === null || row.p99_ms >= (row.p50_ms ?? 0)).toBe(true);
      expect(Number.isInteger(row.errors) && row.errors >= 0).toBe(true);
      expect(row.limit).toEqual(expect.any(String));
      expect(row.limit_value).toBeGreaterThan(0);
      expect(Number.isFinite(row.ratio)).toBe(true);
      expect(row.target).toMatch(/^ratio (>=|<=) \d+(\.\d+)?$/);
      expect(row.met).toEqual(expect.any(Boolean));
    }
  }, 180_000);

  it('writes one result file per scenario and prints a markdown row for each', async () => {
    const out = tempDir();

    const run = await bench(['--quick', '--scenario', 'redeem-miss,ingest', '--out', out], 120_000);

    expect(run.code).toBe(0);
    const files = readdirSync(out).filter((name) => name !== 'latest.json');
    expect(files.map((name) => name.replace(/^.*Z-/, '')).sort()).toEqual([
      'ingest.json',
      'redeem-miss.json',
    ]);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\| scenario \| req\/s \| p50 ms \| p99 ms \| errors \|/);
    expect(lines.slice(2).map((line) => line.split('|')[1]!.trim())).toEqual(['redeem-miss', 'ingest']);
  }, 130_000);
});

describe('bench command line', () => {
  it('refuses an unknown flag with exit code 2, naming the flag', async () => {
    const out = tempDir();

    const run = await bench(['--quick', '--durration', '3', '--out', out], 30_000);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--durration/);
    expect(existsSync(join(out, 'latest.json'))).toBe(false);
  });

  it('refuses an unknown scenario, listing the known ones', async () => {
    const run = await bench(['--scenario', 'redeem-mis'], 30_000);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown scenario "redeem-mis"; known: redeem-miss, /);
  });

  it('refuses a duration out of range', async () => {
    const run = await bench(['--duration', '0'], 30_000);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--duration must be a number from 0\.5 to 3600, got "0"/);
  });
});
