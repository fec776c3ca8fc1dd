import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Logger } from 'pino';
import { onTestFinished } from 'vitest';

import type { Config, ConfigInput } from '../../src/config/config.js';
import { DATABASE_FILE, Service } from '../../src/service.js';
import { RECORDED_ADDRESS } from '../support/recorded-wallet-rpc.js';
import { signRequest } from '../support/sign-request.js';
import { silentLogger, tempConfig } from '../support/temp-service.js';

/** A merchant registered through the internal admin route, with its signing key. */
export type Merchant = {
  id: string;
  keyId: string;
  webhookSecret: string;
  /** base64url of the raw Ed25519 public key, as registered. */
  publicKey: string;
  privateKey: KeyObject;
};

export type MerchantService = {
  service: Service;
  config: Config;
  publicUrl: string;
  internalUrl: string;
  dbFile: string;
  merchant: Merchant;
  /** Sends a request to the public listener signed with the merchant's key. */
  signed(method: string, path: string, options?: SignedOptions): Promise<Response>;
  close(): Promise<void>;
};

export type SignedOptions = { body?: string; headers?: Record<string, string>; created?: number };

export type MerchantServiceOptions = {
  overrides?: ConfigInput;
  webhookUrl?: string;
  webhookSecret?: string;
  logger?: Logger;
  /** Runs on the data dir before the service starts, to seed the database. */
  seed?: (dataDir: string) => void;
  /**
   * Where cleanups go; by default they run when the current test finishes.
   * A fixture shared by a file's tests passes its own and runs them in afterAll.
   */
  cleanup?: (fn: () => unknown) => void;
};

/**
 * A real Service on ephemeral ports with a known wallet address, so that
 * invoices can be created, and one merchant registered the way an
 * operator registers one. Closed when the test finishes.
 */
export async function startMerchantService(
  options: MerchantServiceOptions = {},
): Promise<MerchantService> {
  const cleanup = options.cleanup ?? onTestFinished;
  const dir = mkdtempSync(join(tmpdir(), 'stronghold-hardening-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const config = await tempConfig({
    data_dir: join(dir, 'data'),
    primary_address: RECORDED_ADDRESS,
    ...options.overrides,
  });
  options.seed?.(config.data_dir);
  const service = await Service.start(config, options.logger ?? silentLogger());
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= service.close(100));
  cleanup(close);

  const publicUrl = `http://${service.publicListener.url}`;
  const internalUrl = `http://${service.internalListener.url}`;
  const merchant = await addMerchant(internalUrl, options);
  // Identical requests signed in the same second would carry the same
  // signature and be refused as replays; stepping `created` back keeps
  // the signatures of up to 250 identical requests apart.
  let sent = 0;
  const signed = (method: string, path: string, signedOptions: SignedOptions = {}) =>
    signedFetch(publicUrl, merchant, method, path, {
      created: Math.floor(Date.now() / 1000) - (sent++ % 250),
      ...signedOptions,
    });
  return {
    service,
    config,
    publicUrl,
    internalUrl,
    dbFile: join(config.data_dir, DATABASE_FILE),
    merchant,
    signed,
    close,
  };
}

export async function addMerchant(
  internalUrl: string,
  options: MerchantServiceOptions,
): Promise<Merchant> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x as string;
  const response = await fetch(`${internalUrl}/admin/v1/merchants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'Hardening Shop',
      public_key: raw,
      webhook_url: options.webhookUrl ?? 'http://127.0.0.1:9/webhook',
      ...(options.webhookSecret ? { webhook_secret: options.webhookSecret } : {}),
    }),
  });
  if (response.status !== 201) throw new Error(`merchant add answered ${response.status}`);
  const added = (await response.json()) as { id: string; key_id: string; webhook_secret: string };
  return {
    id: added.id,
    keyId: added.key_id,
    webhookSecret: added.webhook_secret,
    publicKey: raw,
    privateKey,
  };
}

export function signedFetch(
  publicUrl: string,
  merchant: Merchant,
  method: string,
  path: string,
  options: SignedOptions,
): Promise<Response> {
  const url = `${publicUrl}${path}`;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...options.headers,
  };
  Object.assign(
    headers,
    signRequest({
      method,
      url,
      headers,
      body: options.body,
      privateKey: merchant.privateKey,
      keyId: merchant.keyId,
      ...(options.created !== undefined ? { created: options.created } : {}),
    }),
  );
  return fetch(url, {
    method,
    headers,
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
}
