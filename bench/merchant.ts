import { generateKeyPairSync, randomBytes } from 'node:crypto';

import { encodeAddress } from '../src/monero/address.js';

/** A merchant registered through the admin API, with the key the load generator signs with. */
export type BenchMerchant = { id: string; keyId: string; privateKey: string };

/**
 * A valid mainnet primary address from random keys. Nothing is ever paid
 * to it; the service only needs one to build integrated addresses.
 */
export function benchPrimaryAddress(): string {
  return encodeAddress({
    network: 'mainnet',
    kind: 'standard',
    publicSpendKey: randomBytes(32),
    publicViewKey: randomBytes(32),
  });
}

/**
 * Registers a merchant on the internal listener, as an operator would.
 * Its webhook URL is one where nothing listens: deliveries fail at once
 * and are retried later, so the bench measures invoice creation and the
 * outbox writes without a receiver competing for the two cores.
 */
export async function createBenchMerchant(internalUrl: string, webhookUrl: string): Promise<BenchMerchant> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  const response = await fetch(new URL('/admin/v1/merchants', internalUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', public_key: jwk.x, webhook_url: webhookUrl }),
  });
  if (response.status !== 201) {
    throw new Error(`creating the bench merchant answered ${response.status}: ${await response.text()}`);
  }
  const created = (await response.json()) as { id: string; key_id: string };
  return {
    id: created.id,
    keyId: created.key_id,
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
  };
}
