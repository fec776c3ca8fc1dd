import { createHmac, randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { KeyedHash } from '../../src/tickets/keyed-hash.js';
import { Secrets } from '../../src/tickets/secrets.js';

const reference = (key: Buffer, input: Buffer) => createHmac('sha256', key).update(input).digest();

describe('KeyedHash', () => {
  it('gives the HMAC-SHA256 of every input length up to and past its fast-path bound', () => {
    const key = randomBytes(32);
    const mac = new KeyedHash(key, 8);
    for (let length = 0; length <= 80; length++) {
      const input = randomBytes(length);
      expect(mac.digest(input).equals(reference(key, input))).toBe(true);
    }
  });

  it('matches HMAC for keys of 1 to 64 bytes', () => {
    for (const length of [1, 16, 31, 32, 33, 63, 64]) {
      const key = randomBytes(length);
      const input = randomBytes(8);
      expect(new KeyedHash(key, 8).digest(input).equals(reference(key, input))).toBe(true);
    }
  });

  it('returns a fresh buffer each time, so earlier answers do not change', () => {
    const mac = new KeyedHash(randomBytes(32), 8);
    const first = mac.digest(Buffer.from('aaaaaaaa'));
    const copy = Buffer.from(first);
    mac.digest(Buffer.from('bbbbbbbb'));
    expect(first.equals(copy)).toBe(true);
  });

  it('refuses a key longer than one SHA-256 block', () => {
    expect(() => new KeyedHash(randomBytes(65), 8)).toThrow(RangeError);
  });
});

describe('Secrets', () => {
  it('derives the same pid tags and tokens as plain HMAC, so stored tags keep matching', () => {
    const master = randomBytes(32);
    const secrets = new Secrets(master);
    const pidKey = reference(master, Buffer.from('stronghold pid tag v1'));
    const tokenKey = reference(master, Buffer.from('stronghold token v1'));
    for (let i = 0; i < 50; i++) {
      const pid = randomBytes(8);
      expect(secrets.pidTag(pid).equals(reference(pidKey, pid).subarray(0, 16))).toBe(true);
      expect(secrets.token(pid)).toBe(reference(tokenKey, pid).toString('hex'));
    }
  });
});
