import { existsSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

import type { Hono } from 'hono';
import { describe, expect, it, onTestFinished } from 'vitest';

import { ConfigError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/config.js';
import { createInternalApp } from '../../src/http/internal-app.js';
import { registerMerchantAdminRoutes } from '../../src/http/merchant-admin-routes.js';
import { registerWebhookAdminRoutes } from '../../src/http/webhook-admin-routes.js';
import { Metrics } from '../../src/metrics.js';
import { WalletRpcClient } from '../../src/monitor/wallet-rpc-client.js';
import { DATABASE_FILE, Service } from '../../src/service.js';
import { runCli, seedConfirmedPayment } from '../support/crash-harness.js';
import { randomPid, silentLogger, tempConfig, tempDir } from '../support/temp-service.js';
import { startMerchantService } from './merchant-service.js';
import { rawExchange } from './raw-http.js';

/*
 * The public listener serves customer and merchant routes only; files and
 * sockets are closed to other users; secrets never appear in an error.
 */

const NO_SUCH_ROUTE = { error: { code: 'not_found', message: 'no such route' } };

/**
 * Every route the internal listener serves, read from an internal app wired
 * as Service wires it (the stores are never called while routes are
 * registered). A route added there is checked here without editing this file.
 */
function internalRoutes(): { method: string; path: string }[] {
  const unused = {} as never;
  const app = createInternalApp({
    metrics: new Metrics(),
    logger: silentLogger(),
    bodyLimitBytes: 1_024,
    tickets: unused,
    readiness: () => ({ ready: true, checks: {} }),
  });
  registerMerchantAdminRoutes(app, unused);
  registerWebhookAdminRoutes(app, unused, unused);
  return routesOf(app);
}

function routesOf(app: Hono): { method: string; path: string }[] {
  return app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({ method: r.method, path: r.path }));
}

function concrete(path: string, ids: Record<string, string>): string {
  return path.replace(/:([A-Za-z]+)/g, (_, name: string) => ids[name] ?? 'x');
}

async function answer(url: string, method: string, path: string) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(method === 'POST' ? { body: '{}' } : {}),
  });
  const text = await response.text();
  const json = response.headers.get('content-type')?.startsWith('application/json');
  return { status: response.status, body: json ? (JSON.parse(text) as unknown) : text };
}

describe('the public listener', () => {
  const routes = internalRoutes();

  it('knows at least the documented internal routes', () => {
    const paths = routes.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        'GET /metrics',
        'GET /healthz',
        'GET /readyz',
        'POST /api/v1/token/:token/revoke',
        'POST /admin/v1/merchants',
        'GET /admin/v1/merchants',
        'GET /admin/v1/merchants/:id',
        'POST /admin/v1/merchants/:id/disable',
        'POST /admin/v1/merchants/:id/keys',
        'POST /admin/v1/merchants/:id/keys/:keyId/revoke',
        'GET /admin/v1/webhooks/deliveries',
        'GET /admin/v1/webhooks/deliveries/:id',
        'POST /admin/v1/webhooks/deliveries/:id/redeliver',
      ]),
    );
  });

  it.each(internalRoutes())(
    'answers $method $path with 404 no such route, while the internal listener serves it',
    async ({ method, path }) => {
      const { publicUrl, internalUrl, merchant } = await startMerchantService();
      const ids = {
        id: path.includes('webhooks') ? `wd_${'A'.repeat(22)}` : merchant.id,
        keyId: merchant.keyId,
        token: '0'.repeat(64),
      };
      const target = concrete(path, ids);

      const onPublic = await answer(publicUrl, method, target);
      const onInternal = await answer(internalUrl, method, target);

      expect(onPublic).toEqual({ status: 404, body: NO_SUCH_ROUTE });
      expect(onInternal.body).not.toEqual(NO_SUCH_ROUTE);
      if (method === 'GET')
        expect((await fetch(`${publicUrl}${target}`, { method: 'HEAD' })).status).toBe(404);
    },
  );

  it.each([
    '/metrics/',
    '//metrics',
    '/METRICS',
    '/%6detrics',
    '/admin/v1/merchants/',
    '/%61dmin/v1/merchants',
    '/api/v1/../../admin/v1/merchants',
    '/api/v1/info/../../healthz',
    'http://internal/metrics',
  ])('answers GET %s with 404 JSON on the public listener', async (target) => {
    const { service } = await startMerchantService();
    const raw = await rawExchange(
      service.publicListener.port!,
      `GET ${target} HTTP/1.1\r\nHost: shop.onion\r\nConnection: close\r\n\r\n`,
    );

    expect(raw.status).toBe(404);
    expect(JSON.parse(raw.body)).toEqual(NO_SUCH_ROUTE);
  });
});

describe('files and sockets', () => {
  it('keeps the data dir 0700, the database, its -wal and -shm and the secret 0600, and sockets 0660, even under umask 000', async () => {
    const previous = process.umask(0);
    onTestFinished(() => void process.umask(previous));
    const dir = tempDir();
    const publicSock = join(dir, 'public.sock');
    const internalSock = join(dir, 'internal.sock');
    const pid = randomPid();
    const config = await tempConfig({
      public_listen: `unix:${publicSock}`,
      internal_listen: `unix:${internalSock}`,
      data_dir: join(dir, 'data'),
    });
    seedConfirmedPayment(config.data_dir, pid, 5_000_000n);
    const service = await Service.start(config, silentLogger());
    onTestFinished(() => service.close(100));
    // A claim, so that the WAL holds a commit.
    const claimed = await postOverSocket(publicSock, '/api/v1/redeem', JSON.stringify({ pid }));
    expect(claimed.status).toBe(200);

    const db = join(config.data_dir, DATABASE_FILE);
    expect(existsSync(`${db}-wal`) && existsSync(`${db}-shm`)).toBe(true);
    expect(modeOf(config.data_dir)).toBe(0o700);
    for (const file of [db, `${db}-wal`, `${db}-shm`, config.secret_file])
      expect([file, modeOf(file)]).toEqual([file, 0o600]);
    expect(modeOf(publicSock)).toBe(0o660);
    expect(modeOf(internalSock)).toBe(0o660);
  });

  it('writes a backup file 0600 even under umask 000', async () => {
    const previous = process.umask(0);
    onTestFinished(() => void process.umask(previous));
    const dataDir = join(tempDir(), 'data');
    seedConfirmedPayment(dataDir, randomPid(), 5_000_000n);
    const target = join(tempDir(), 'copy.db');

    const result = await runCli(['backup', target], { data_dir: dataDir });

    expect(result.code).toBe(0);
    expect(modeOf(target)).toBe(0o600);
  });
});

describe('secrets in error messages', () => {
  it('does not echo a refused webhook secret from the admin route or the CLI', async () => {
    const { internalUrl } = await startMerchantService();
    const secret = 'short-secret';
    const tooLong = `s3cr3t-${'x'.repeat(300)}`;

    for (const webhookSecret of [secret, tooLong]) {
      const response = await fetch(`${internalUrl}/admin/v1/merchants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'Shop',
          public_key: 'A'.repeat(43),
          webhook_url: 'http://shop.onion/h',
          webhook_secret: webhookSecret,
        }),
      });
      const text = await response.text();
      expect(response.status).toBe(400);
      expect(text).not.toContain(webhookSecret.slice(0, 12));
    }
    const cli = await runCli(
      [
        'merchant',
        'add',
        '--name',
        'Shop',
        '--public-key',
        'A'.repeat(43),
        '--webhook-url',
        'http://shop.onion/h',
        '--webhook-secret',
        secret,
      ],
      { data_dir: join(tempDir(), 'data') },
    );
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain('webhook_secret');
    expect(cli.stderr + cli.stdout).not.toContain(secret);
  });

  it('does not echo credentials in a proxy URL from the config error', () => {
    const load = () =>
      loadConfig({ env: { STRONGHOLD_OUTBOUND_PROXY: 'socks5h://user:hunter2@127.0.0.1:9050/x' } });
    expect(load).toThrow(ConfigError);
    expect(() => load()).not.toThrow(/hunter2/);
  });

  it('refuses wallet RPC credentials at start-up rather than quoting them in every failed poll', () => {
    const construct = () =>
      new WalletRpcClient({ url: 'http://user:hunter2@127.0.0.1:18082', timeoutMs: 1_000 });

    expect(construct).toThrow(RangeError);
    expect(construct).not.toThrow(/hunter2/);
  });
});

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function postOverSocket(
  socketPath: string,
  path: string,
  body: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', host: 'shop.onion' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
