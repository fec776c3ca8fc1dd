import { randomBytes } from 'node:crypto';

/** A random, unguessable identifier: a prefix and 16 random bytes in base64url. */
export function randomId(prefix: string, bytes = 16): string {
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`;
}
