import { setTimeout as sleep } from 'node:timers/promises';

import type { Harness } from '../harness.js';
import { describeLoad, type LoadSpec, measureLoad } from '../http-measure.js';
import type { LoadJob } from '../load-child.js';
import { errorsOf, makeRow, type Scenario } from '../scenario.js';
import { startInvoiceService } from './invoice-service.js';

const FLOOD_START_S = 1;

/**
 * Customers during a merchant flood. Redeem-miss runs at a steady pace
 * (4 connections, 250 requests per second each: a load the service answers
 * without queueing) once alone and once while invoice-create saturates the
 * service; the ratio is its p99 during the flood over its p99 alone.
 */
export const mixedFlood: Scenario = {
  name: 'mixed-flood',
  async run(harness: Harness) {
    const { options } = harness;
    const { service, plan } = await startInvoiceService(harness, 'mixed-flood');
    try {
      const paced = {
        label: 'redeem-miss paced',
        plan: { kind: 'redeem-random' },
        expectStatus: [404],
        connections: 4,
        connectionRate: 250,
      } satisfies LoadSpec;
      const alone = await measureLoad(harness, service.server, paced);
      harness.progress(`  redeem-miss alone: ${describeLoad(alone)}`);

      const flooding = harness.drive({
        label: 'invoice flood',
        url: service.publicUrl,
        connections: options.connections,
        durationS: Math.max(options.warmupS, FLOOD_START_S) + options.durationS + 1,
        plan,
        expectStatus: [201],
      } satisfies LoadJob);
      // Long enough for the flood's load generator to start, at least.
      await sleep(Math.max(options.warmupS, FLOOD_START_S) * 1000);
      const mixed = await harness.drive({ ...paced, url: service.publicUrl, durationS: options.durationS }, service.child);
      const flood = await flooding;
      harness.progress(`  redeem-miss during the flood: ${describeLoad(mixed)}`);
      harness.progress(`  invoice flood: ${describeLoad(flood)}`);

      const row = makeRow({
        name: 'mixed-flood',
        target: { op: '<=', value: 2 },
        load: { ...mixed, errors: errorsOf(mixed) + errorsOf(flood) },
        limit: 'redeem-miss p99 alone (ms)',
        limitValue: alone.p99_ms,
        ratio: mixed.p99_ms / alone.p99_ms,
        rssBytes: service.child.rssBytes(),
      });
      return { row, details: { alone, mixed, flood } };
    } finally {
      await service.child.stop();
    }
  },
};
