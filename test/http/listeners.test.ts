import { spawn } from 'node:child_process';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { DATABASE_FILE } from '../../src/service.js';
import { FaultyWalletRpc } from '../support/faulty-wallet-rpc.js';
import { startTempService, tempDir, waitFor } from '../support/temp-service.js';

const INTERNAL_ROUTES: [string, string][] = [
  ['GET', '/metrics'],
  ['GET', '/healthz'],
  ['GET', '/readyz'],
  ['POST', '/api/v1/token/x/revoke'],
];

function send(url: string, method: string, path: string): Promise<Response> {
  return fetch(`http://${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(method === 'POST' ? { body: '{}' } : {}),
  });
}

/** GET over a unix socket, answering the status and body text. */
function getOverSocket(
  socketPath: string,
  path: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Leaves a unix socket file behind as a crashed process would: bound, then killed. */
async function staleSocket(path: string): Promise<void> {
  const script = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('bound'))`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

async function rpcErrors(url: string): Promise<string> {
  const text = await (await send(url, 'GET', '/metrics')).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('stronghold_wallet_rpc_errors_total{'))
    .join('\n');
}

describe('Service listeners', () => {
  it.each(INTERNAL_ROUTES)(
    'answers %s %s with 404 on the public listener but serves it internally',
    async (method, path) => {
      const { service } = await startTempService();

      const onPublic = await send(service.publicListener.url, method, path);
      const onInternal = await send(service.internalListener.url, method, path);

      expect(onPublic.status).toBe(404);
      expect(await onPublic.json()).toMatchObject({ error: { code: 'not_found' } });
      expect(onInternal.status).not.toBe(404);
    },
  );

  it('binds both listeners to ephemeral ports when port 0 is configured', async () => {
    const { service, config } = await startTempService();

    expect(config.public_listen).toBe('127.0.0.1:0');
    expect(service.publicListener.port).toBeGreaterThan(0);
    expect(service.internalListener.port).toBeGreaterThan(0);
    expect(service.publicListener.port).not.toBe(service.internalListener.port);
  });

  it('creates unix socket listeners with mode 0660 that answer requests', async () => {
    const dir = tempDir();
    const publicSock = join(dir, 'public.sock');
    const internalSock = join(dir, 'internal.sock');

    await startTempService({
      public_listen: `unix:${publicSock}`,
      internal_listen: `unix:${internalSock}`,
    });

    expect(modeOf(publicSock)).toBe(0o660);
    expect(modeOf(internalSock)).toBe(0o660);
    expect((await getOverSocket(internalSock, '/healthz')).status).toBe(200);
    expect((await getOverSocket(publicSock, '/healthz')).status).toBe(404);
  });

  it('removes a stale socket file left by a crash and listens on its path', async () => {
    const dir = tempDir();
    const internalSock = join(dir, 'internal.sock');
    await staleSocket(internalSock);
    expect(lstatSync(internalSock).isSocket()).toBe(true);

    await startTempService({ internal_listen: `unix:${internalSock}` });

    expect((await getOverSocket(internalSock, '/healthz')).status).toBe(200);
  });

  it('creates the data dir 0700 and the database and secret files 0600', async () => {
    const { config } = await startTempService();

    expect(modeOf(config.data_dir)).toBe(0o700);
    expect(modeOf(join(config.data_dir, DATABASE_FILE))).toBe(0o600);
    expect(config.secret_file).toBe(join(config.data_dir, 'secret.key'));
    expect(modeOf(config.secret_file)).toBe(0o600);
  });

  it('stays up while the wallet is unreachable, answering /readyz 503 with wallet_rpc false', async () => {
    const { service } = await startTempService();
    const internal = service.internalListener.url;

    await waitFor('two failed polls', async () =>
      /code="rpc_unreachable"} [2-9]/.test(await rpcErrors(internal)),
    );

    const health = await send(internal, 'GET', '/healthz');
    const ready = await send(internal, 'GET', '/readyz');
    expect(health.status).toBe(200);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({
      status: 'not_ready',
      checks: { database: true, wallet_rpc: false, monitor_lag: false },
    });
  });

  it('closes both listeners, stops polling the wallet and removes its sockets on close()', async () => {
    const fake = await FaultyWalletRpc.start();
    onTestFinished(() => fake.close());
    fake.fail('http_500');
    const sock = join(tempDir(), 'internal.sock');
    const { service, close } = await startTempService({
      wallet_rpc_url: fake.url,
      internal_listen: `unix:${sock}`,
    });
    const publicUrl = service.publicListener.url;
    await waitFor('a wallet poll', () => fake.calls.length > 0);

    await close();
    const pollsAtClose = fake.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 300));

    await expect(send(publicUrl, 'GET', '/api/v1/info')).rejects.toThrow();
    expect(existsSync(sock)).toBe(false);
    expect(fake.calls.length).toBe(pollsAtClose);
  });
});
