import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { encodeAddress } from '../../src/monero/address.js';
import { DATABASE_FILE } from '../../src/service.js';
import { signRequest } from '../support/sign-request.js';
import { startTempService, tempDir } from '../support/temp-service.js';

const CLI = join(import.meta.dirname, '../../dist/src/cli.js');

type Run = { code: number; stdout: string; stderr: string };

/** Runs the compiled `stronghold` with only STRONGHOLD_DATA_DIR set among its settings. */
function stronghold(dataDir: string, args: string[]): Promise<Run> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('STRONGHOLD_')),
  );
  env.STRONGHOLD_DATA_DIR = dataDir;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env }, (err, stdout, stderr) => {
      const code = err ? Number((err as { code?: unknown }).code ?? 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

type TestKey = { raw: string; privateKey: KeyObject };

/**
 * An Ed25519 key pair whose base64url public key starts with `-` when
 * `leadingDash` is true and with anything else otherwise: a leading dash
 * needs the `--public-key=K` form, tested on its own below.
 */
function publicKey(leadingDash = false): TestKey {
  for (;;) {
    const pair = generateKeyPairSync('ed25519');
    const raw = pair.publicKey.export({ format: 'jwk' }).x as string;
    if (raw.startsWith('-') === leadingDash) return { raw, privateKey: pair.privateKey };
  }
}

function json(run: Run): Record<string, any> {
  expect(run).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(run.stdout) as Record<string, any>;
}

/** Row counts read straight from the database file the CLI writes. */
function counts(dataDir: string): { merchants: number; keys: number } {
  const file = join(dataDir, DATABASE_FILE);
  if (!existsSync(file)) return { merchants: 0, keys: 0 };
  const db = new Database(file, { readonly: true });
  try {
    const count = (table: string) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get();
    return { merchants: count('merchants') as number, keys: count('merchant_keys') as number };
  } finally {
    db.close();
  }
}

type AddedMerchant = { id: string; key_id: string; webhook_secret: string; key: TestKey };

async function addMerchant(dataDir: string, name = 'Shop'): Promise<AddedMerchant> {
  const key = publicKey();
  const added = json(
    await stronghold(dataDir, [
      'merchant',
      'add',
      '--name',
      name,
      '--public-key',
      key.raw,
      '--webhook-url',
      'http://shop.example/hook',
    ]),
  );
  return { id: added.id, key_id: added.key_id, webhook_secret: added.webhook_secret, key };
}

describe('stronghold merchant add', () => {
  it('prints the merchant id, key id and webhook secret as JSON and stores the key', async () => {
    const dataDir = join(tempDir(), 'data');
    const key = publicKey();

    const run = await stronghold(dataDir, [
      'merchant',
      'add',
      '--name',
      'Onion Books',
      '--public-key',
      key.raw,
      '--webhook-url',
      'http://books.example/hook',
    ]);

    const out = json(run);
    expect(Object.keys(out).sort()).toEqual(['id', 'key_id', 'webhook_secret']);
    expect(out.id).toMatch(/^m_[A-Za-z0-9_-]+$/);
    expect(out.key_id).toMatch(/^k_[A-Za-z0-9_-]+$/);
    expect(out.webhook_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
    onTestFinished(() => {
      db.close();
    });
    const stored = db.prepare('SELECT public_key FROM merchant_keys WHERE key_id = ?').pluck();
    expect(stored.get(out.key_id)).toEqual(Buffer.from(key.raw, 'base64url'));
  });

  it('keeps a webhook secret given with --webhook-secret', async () => {
    const dataDir = join(tempDir(), 'data');
    // Not a random first character: one secret in 64 would start with a
    // dash, which the option parser takes for an option of its own (the
    // --public-key=K test covers that form).
    const secret = `s${randomBytes(24).toString('base64url')}`;

    const out = json(
      await stronghold(dataDir, [
        'merchant',
        'add',
        '--name',
        'Shop',
        '--public-key',
        publicKey().raw,
        '--webhook-url',
        'http://shop.example/hook',
        '--webhook-secret',
        secret,
      ]),
    );

    expect(out.webhook_secret).toBe(secret);
  });

  it('takes a public key that starts with a dash in the --public-key=K form', async () => {
    const dataDir = join(tempDir(), 'data');
    const key = publicKey(true);

    const out = json(
      await stronghold(dataDir, [
        'merchant',
        'add',
        '--name',
        'Shop',
        `--public-key=${key.raw}`,
        '--webhook-url',
        'http://shop.example/hook',
      ]),
    );

    expect(out.key_id).toMatch(/^k_/);
    expect(counts(dataDir)).toEqual({ merchants: 1, keys: 1 });
  });

  it('exits 2 naming the --public-key=K form for a dash-led key given separately', async () => {
    const dataDir = join(tempDir(), 'data');
    const key = publicKey(true);

    const run = await stronghold(dataDir, [
      'merchant',
      'add',
      '--name',
      'Shop',
      '--public-key',
      key.raw,
      '--webhook-url',
      'http://shop.example/hook',
    ]);

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toContain("'--public-key=-XYZ'");
    expect(run.stderr).not.toContain('    at ');
    expect(counts(dataDir)).toEqual({ merchants: 0, keys: 0 });
  });

  it('exits 2 with the usage for a misspelled option, writing nothing', async () => {
    const dataDir = join(tempDir(), 'data');

    const run = await stronghold(dataDir, ['merchant', 'add', '--nmae', 'Shop']);

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(/Unknown option '--nmae'/);
    expect(run.stderr).toContain('usage: stronghold');
    expect(counts(dataDir)).toEqual({ merchants: 0, keys: 0 });
  });

  it.each([
    ['a public key that is not base64url of 32 bytes', ['--public-key', 'not-a-key'], /public_key/],
    [
      'a public key of 33 bytes',
      ['--public-key', Buffer.alloc(33, 7).toString('base64url')],
      /public_key/,
    ],
    ['a webhook URL that is not http(s)', ['--webhook-url', 'gopher://x.example/'], /webhook_url/],
    ['a missing name', ['--name', ''], /name/],
  ])('exits 2 with a message on stderr for %s, writing nothing', async (_rule, change, message) => {
    const dataDir = join(tempDir(), 'data');
    const options: Record<string, string> = {
      '--name': 'Shop',
      '--public-key': publicKey().raw,
      '--webhook-url': 'http://shop.example/hook',
    };
    options[change[0]!] = change[1]!;

    const run = await stronghold(dataDir, ['merchant', 'add', ...Object.entries(options).flat()]);

    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^stronghold: /);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toContain('    at ');
    expect(counts(dataDir)).toEqual({ merchants: 0, keys: 0 });
  });
});

describe('stronghold merchant list, disable, add-key, revoke-key', () => {
  it('lists every merchant with its keys and without its webhook secret', async () => {
    const dataDir = join(tempDir(), 'data');
    const a = await addMerchant(dataDir, 'Alpha');
    const b = await addMerchant(dataDir, 'Beta');

    const out = json(await stronghold(dataDir, ['merchant', 'list']));

    expect(out.merchants).toHaveLength(2);
    expect(out.merchants).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: a.id,
          name: 'Alpha',
          disabled_at: null,
          keys: [expect.objectContaining({ key_id: a.key_id, revoked_at: null })],
        }),
        expect.objectContaining({ id: b.id, name: 'Beta' }),
      ]),
    );
    expect(JSON.stringify(out)).not.toContain(a.webhook_secret);
  });

  it('disables a merchant, and disabling again keeps the first time', async () => {
    const dataDir = join(tempDir(), 'data');
    const shop = await addMerchant(dataDir);

    const first = json(await stronghold(dataDir, ['merchant', 'disable', '--id', shop.id]));
    const again = json(await stronghold(dataDir, ['merchant', 'disable', '--id', shop.id]));

    expect(first).toMatchObject({ id: shop.id, disabled_at: expect.any(Number) });
    expect(again.disabled_at).toBe(first.disabled_at);
  });

  it('adds a key beside the first and revokes the old one', async () => {
    const dataDir = join(tempDir(), 'data');
    const shop = await addMerchant(dataDir);
    const next = publicKey();

    const added = json(
      await stronghold(dataDir, ['merchant', 'add-key', '--id', shop.id, '--public-key', next.raw]),
    );
    const revoked = json(
      await stronghold(dataDir, [
        'merchant',
        'revoke-key',
        '--id',
        shop.id,
        '--key-id',
        shop.key_id,
      ]),
    );

    expect(Object.keys(added)).toEqual(['key_id']);
    expect(revoked.keys).toHaveLength(2);
    expect(revoked.keys).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key_id: shop.key_id, revoked_at: expect.any(Number) }),
        expect.objectContaining({ key_id: added.key_id, revoked_at: null }),
      ]),
    );
  });

  it('exits 2 for a bad key given to add-key, adding no key', async () => {
    const dataDir = join(tempDir(), 'data');
    const shop = await addMerchant(dataDir);

    const run = await stronghold(dataDir, [
      'merchant',
      'add-key',
      '--id',
      shop.id,
      '--public-key',
      'AAAA',
    ]);

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(/public_key must be base64url/);
    expect(counts(dataDir)).toEqual({ merchants: 1, keys: 1 });
  });

  it("exits 2 rather than revoke a merchant's last live key", async () => {
    const dataDir = join(tempDir(), 'data');
    const shop = await addMerchant(dataDir);

    const run = await stronghold(dataDir, [
      'merchant',
      'revoke-key',
      '--id',
      shop.id,
      '--key-id',
      shop.key_id,
    ]);

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(/one live key/);
    const listed = json(await stronghold(dataDir, ['merchant', 'list']));
    expect(listed.merchants[0].keys[0].revoked_at).toBeNull();
  });

  it.each([
    ['disable', ['merchant', 'disable', '--id', 'm_nobody']],
    ['add-key', ['merchant', 'add-key', '--id', 'm_nobody', '--public-key', 'A'.repeat(43)]],
    ['revoke-key', ['merchant', 'revoke-key', '--id', 'm_nobody', '--key-id', 'k_x']],
  ])('exits 2 for %s on an unknown merchant', async (_action, args) => {
    const dataDir = join(tempDir(), 'data');
    await addMerchant(dataDir);

    const run = await stronghold(dataDir, args);

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(/unknown merchant/);
    expect(counts(dataDir)).toEqual({ merchants: 1, keys: 1 });
  });

  it('exits 2 with the usage for an unknown merchant action', async () => {
    const dataDir = join(tempDir(), 'data');

    const run = await stronghold(dataDir, ['merchant', 'rename', '--id', 'm_x']);

    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(/unknown action/);
    expect(run.stderr).toContain('merchant add --name N');
  });
});

describe('stronghold merchant beside a running service', () => {
  it('registers a merchant whose signed requests the running service accepts at once', async () => {
    const primary = encodeAddress({
      network: 'mainnet',
      kind: 'standard',
      publicSpendKey: randomBytes(32),
      publicViewKey: randomBytes(32),
    });
    const { service, config } = await startTempService({ primary_address: primary, workers: 1 });
    const shop = await addMerchant(config.data_dir);
    const url = `http://${service.publicListener.url}/api/v1/invoices`;
    const body = JSON.stringify({ amount_atomic: '1000' });
    const headers = { 'content-type': 'application/json' };
    const sign = (created: number) =>
      signRequest({
        method: 'POST',
        url,
        headers,
        body,
        privateKey: shop.key.privateKey,
        keyId: shop.key_id,
        created,
      });

    const signedAt = now();
    const created = await fetch(url, {
      method: 'POST',
      headers: { ...headers, ...sign(signedAt) },
      body,
    });
    json(await stronghold(config.data_dir, ['merchant', 'disable', '--id', shop.id]));
    const refused = await fetch(url, {
      method: 'POST',
      headers: { ...headers, ...sign(signedAt - 1) },
      body,
    });

    expect(created.status).toBe(201);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: 'unknown_key' } });
  });
});

function now(): number {
  return Math.floor(Date.now() / 1000);
}
