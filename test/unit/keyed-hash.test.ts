import { createHmac, randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { KeyedHash } from '../../src/tickets/keyed-hash.js';
import { Secrets, tagOfToken } from '../../src/tickets/secrets.js';

const reference = (key: Buffer, input: Buffer) => createHmac('sha256', key).update(input).digest();

describe('KeyedHash', () => {
  it('gives the HMAC-SHA256 of every input length up to and past its fast-path bound', () => {
    const key = randomBytes(32);
    const mac = new KeyedHash(key);
    for (let length = 0; length <= 80; length++) {
      const input = randomBytes(length);
      expect(mac.digest(input).equals(reference(key, input))).toBe(true);
    }
  });

  it('matches HMAC for keys of 1 to 64 bytes', () => {
    for (const length of [1, 16, 31, 32, 33, 63, 64]) {
      const key = randomBytes(length);
      const input = randomBytes(8);
      expect(new KeyedHash(key).digest(input).equals(reference(key, input))).toBe(true);
    }
  });

  it('returns a fresh buffer each time, so earlier answers do not change', () => {
    const mac = new KeyedHash(randomBytes(32));
    const first = mac.digest(Buffer.from('aaaaaaaa'));
    const copy = Buffer.from(first);
    mac.digest(Buffer.from('bbbbbbbb'));
    expect(first.equals(copy)).toBe(true);
  });

  it('refuses a key longer than one SHA-256 block', () => {
    expect(() => new KeyedHash(randomBytes(65))).toThrow(RangeError);
  });
});

describe('Secrets', () => {
  it('derives pid tags as plain HMAC, and tokens as the tag followed by half an HMAC', () => {
    const master = randomBytes(32);
    const secrets = new Secrets(master);
    const pidKey = reference(master, Buffer.from('stronghold pid tag v1'));
    const tokenKey = reference(master, Buffer.from('stronghold token v2'));
    for (let i = 0; i < 50; i++) {
      const pid = randomBytes(8);
      const tag = reference(pidKey, pid).subarray(0, 16);
      expect(secrets.pidTag(pid).equals(tag)).toBe(true);
      const token = secrets.token(pid);
      expect(token).toBe(tag.toString('hex') + reference(tokenKey, pid).subarray(0, 16).toString('hex'));
      expect(tagOfToken(token).equals(tag)).toBe(true);
    }
  });
});
