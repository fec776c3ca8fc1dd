import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { BloomFilter } from '../../src/tickets/bloom-filter.js';

const TAG_BYTES = 16;

/** `count` random 16-byte tags cut from one buffer (one randomBytes call per tag is slow). */
function randomTags(count: number): Uint8Array[] {
  const bytes = randomBytes(count * TAG_BYTES);
  return Array.from({ length: count }, (_, i) =>
    bytes.subarray(i * TAG_BYTES, (i + 1) * TAG_BYTES),
  );
}

// Worker threads cannot load TypeScript; like the service's own workers they
// load the compiled module that the global test setup builds into dist/.
const COMPILED = new URL('../../dist/src/tickets/bloom-filter.js', import.meta.url);

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.moduleUrl).then(({ BloomFilter }) => {
  const filter = new BloomFilter(workerData.buffer, workerData.hashes);
  const seen = workerData.tags.map((tag) => filter.has(tag));
  filter.add(workerData.tagFromWorker);
  parentPort.postMessage(seen);
});
`;

function runWorker(workerData: Record<string, unknown>): Promise<boolean[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_CODE, { eval: true, workerData });
    worker.once('message', (message: boolean[]) => {
      resolve(message);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

describe('BloomFilter', () => {
  it('finds every one of 100k inserted tags', () => {
    const filter = BloomFilter.create(100_000, 0.001);
    const tags = randomTags(100_000);
    for (const tag of tags) filter.add(tag);

    const missing = tags.filter((tag) => !filter.has(tag)).length;

    expect(missing).toBe(0);
  });

  it('keeps the false positive rate for random tags within 2x of the configured rate', () => {
    const rate = 0.01;
    const filter = BloomFilter.create(100_000, rate);
    for (const tag of randomTags(100_000)) filter.add(tag);

    const probes = randomTags(200_000);
    const measured = probes.filter((tag) => filter.has(tag)).length / probes.length;

    expect(measured).toBeLessThanOrEqual(rate * 2);
    expect(measured).toBeGreaterThanOrEqual(rate / 2);
  });

  it('answers no for every tag while empty', () => {
    const filter = BloomFilter.create(1_000, 0.001);

    expect(randomTags(10_000).some((tag) => filter.has(tag))).toBe(false);
  });

  it('shares its bits with a second filter over the same SharedArrayBuffer', () => {
    const first = BloomFilter.create(1_000, 0.001);
    const second = new BloomFilter(first.buffer, first.hashes);
    const tags = randomTags(100);

    for (const tag of tags.slice(0, 50)) first.add(tag);
    for (const tag of tags.slice(50)) second.add(tag);

    expect(tags.every((tag) => first.has(tag) && second.has(tag))).toBe(true);
  });

  it('shares its bits with a filter in a worker thread, in both directions', async () => {
    expect(existsSync(fileURLToPath(COMPILED)), 'run `npx tsc -p .` to build dist/').toBe(true);
    const filter = BloomFilter.create(1_000, 0.001);
    const tags = randomTags(20);
    for (const tag of tags) filter.add(tag);
    const [tagFromWorker] = randomTags(1);
    expect(filter.has(tagFromWorker!)).toBe(false);

    const seen = await runWorker({
      moduleUrl: COMPILED.href,
      buffer: filter.buffer,
      hashes: filter.hashes,
      tags,
      tagFromWorker,
    });

    expect(seen).toEqual(tags.map(() => true));
    expect(filter.has(tagFromWorker!)).toBe(true);
  });

  it('refuses a buffer whose length is not a multiple of 4 bytes', () => {
    expect(() => new BloomFilter(new SharedArrayBuffer(6), 3)).toThrow(RangeError);
  });

  it('refuses an empty buffer', () => {
    expect(() => new BloomFilter(new SharedArrayBuffer(0), 3)).toThrow(RangeError);
  });

  it.each([0, 33, 2.5])('refuses %s hash functions', (hashes) => {
    expect(() => new BloomFilter(new SharedArrayBuffer(8), hashes)).toThrow(RangeError);
  });

  it('refuses tags shorter than 8 bytes', () => {
    const filter = BloomFilter.create(1_000, 0.001);

    expect(() => filter.add(new Uint8Array(7))).toThrow(RangeError);
  });
});
