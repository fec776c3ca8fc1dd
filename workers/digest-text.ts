import { createHash } from 'node:crypto';

/**
 * Worker handler: hashes a batch of texts (invoices' canonical JSON) and
 * answers each with its lowercase hex digest, in order.
 */

export type DigestItem = { text: string; algorithm: 'sha256' };

export default function digestText(items: DigestItem[]): string[] {
  return items.map(({ text, algorithm }) =>
    createHash(algorithm).update(text, 'utf8').digest('hex'),
  );
}
