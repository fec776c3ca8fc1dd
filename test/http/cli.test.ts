import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';

import { decodeAddress, encodeAddress } from '../../src/monero/address.js';
import { tempDir } from '../support/temp-service.js';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'dist/src/cli.js');

function primaryAddress(): string {
  return encodeAddress({
    network: 'mainnet',
    kind: 'standard',
    publicSpendKey: randomBytes(32),
    publicViewKey: randomBytes(32),
  });
}

async function stronghold(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run('node', [CLI, ...args], { env: { PATH: process.env.PATH, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('stronghold command line', () => {
  it('migrate creates the schema and reports its version', async () => {
    const dataDir = join(tempDir(), 'data');

    const result = await stronghold(['migrate'], { STRONGHOLD_DATA_DIR: dataDir });

    expect(result.code).toBe(0);
    const { schema_version } = JSON.parse(result.stdout) as { schema_version: number };
    expect(schema_version).toBeGreaterThanOrEqual(2);
    const db = new Database(join(dataDir, 'stronghold.db'), { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    db.close();
    expect(tables).toEqual(expect.arrayContaining(['payments', 'tickets', 'invoices', 'merchants']));
  });

  it('address prints the integrated address for a given payment id', async () => {
    const primary = primaryAddress();

    const result = await stronghold(['address', '--pid', '00112233AABBCCDD'], {
      STRONGHOLD_DATA_DIR: join(tempDir(), 'data'),
      STRONGHOLD_PRIMARY_ADDRESS: primary,
    });

    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as { pid: string; integrated_address: string };
    expect(printed.pid).toBe('00112233aabbccdd');
    const decoded = decodeAddress(printed.integrated_address);
    expect(decoded.kind).toBe('integrated');
    expect(Buffer.from(decoded.paymentId!).toString('hex')).toBe('00112233aabbccdd');
    expect(decoded.publicSpendKey).toEqual(decodeAddress(primary).publicSpendKey);
  });

  it('address picks a random payment id when none is given', async () => {
    const env = { STRONGHOLD_DATA_DIR: join(tempDir(), 'data'), STRONGHOLD_PRIMARY_ADDRESS: primaryAddress() };

    const first = JSON.parse((await stronghold(['address'], env)).stdout) as { pid: string };
    const second = JSON.parse((await stronghold(['address'], env)).stdout) as { pid: string };

    expect(first.pid).toMatch(/^[0-9a-f]{16}$/);
    expect(first.pid).not.toBe(second.pid);
  });

  it('address refuses a malformed payment id with exit code 2', async () => {
    const result = await stronghold(['address', '--pid', 'xyz'], {
      STRONGHOLD_DATA_DIR: join(tempDir(), 'data'),
      STRONGHOLD_PRIMARY_ADDRESS: primaryAddress(),
    });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--pid must be 16 hex digits');
  });

  it('refuses an invalid setting with exit code 2 and a message naming it', async () => {
    const result = await stronghold(['migrate'], {
      STRONGHOLD_DATA_DIR: join(tempDir(), 'data'),
      STRONGHOLD_MIN_CONFIRMATIONS: 'many',
    });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('min_confirmations');
  });

  it('prints its usage and exits 2 for an unknown command', async () => {
    const result = await stronghold(['fly'], {});

    expect(result.code).toBe(2);
    expect(result.stdout).toContain('usage: stronghold');
  });
});
