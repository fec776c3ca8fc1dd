import { availableParallelism } from 'node:os';

import { DEFAULTS } from '../../src/config/config.js';
import type { Harness } from '../harness.js';
import { describeLoad, measureLoad } from '../http-measure.js';
import { measureInvoiceWrites, measureVerifyRate } from '../raw-limits.js';
import { errorsOf, makeRow, type Scenario } from '../scenario.js';
import { startInvoiceService } from './invoice-service.js';

/**
 * Signed invoice creation: every request is signed by the load generator
 * with the merchant's Ed25519 key (a new order id each time), checked in
 * the worker pool, and stored with its webhook event. The limit is the raw
 * verification rate of one thread times the worker threads that can run at
 * once (no more than there are cores).
 */
export const invoiceCreate: Scenario = {
  name: 'invoice-create',
  async run(harness: Harness) {
    const { service, plan } = await startInvoiceService(harness, 'invoice-create');
    try {
      const perThread = measureVerifyRate(harness.options.quick ? 0.3 : 1);
      const cores = availableParallelism();
      const threads = Math.min(harness.options.workers, cores);
      const limitValue = perThread * threads;
      harness.progress(
        `  limit: raw Ed25519 verify ${Math.round(perThread).toLocaleString('en-US')}/s per thread ` +
          `x ${threads} (workers ${harness.options.workers}, cores ${cores})`,
      );

      const floor = invoiceFloor(harness, limitValue);

      const load = await measureLoad(harness, service.server, {
        label: 'invoice-create',
        plan,
        expectStatus: [201],
      });
      harness.progress(`  service: ${describeLoad(load)}`);
      const row = makeRow({
        name: 'invoice-create',
        target: { op: '>=', value: 0.8 },
        load: { ...load, errors: errorsOf(load) },
        limit: 'verify/s x threads',
        limitValue,
        ratio: load.rps / limitValue,
        rssBytes: service.child.rssBytes(),
      });
      return {
        row,
        details: { verifyPerThread: perThread, threads, workers: harness.options.workers, cores, floor, load },
      };
    } finally {
      await service.child.stop();
    }
  },
};

/** Invoices in one group commit under a flood: as many as the merchant gate lets in. */
const GATE = DEFAULTS.merchant_requests_in_flight;

/**
 * What storing an invoice costs SQLite alone, on the main thread where the
 * one writer lives: next to the limit, the most of it the service could
 * reach if nothing but the write were done there.
 */
function invoiceFloor(harness: Harness, limitValue: number) {
  const writesPerS = measureInvoiceWrites(harness.dir('raw-invoices'), harness.options.quick ? 0.2 : 1, GATE);
  const writeUs = 1e6 / writesPerS;
  const bestRatio = writesPerS / limitValue;
  harness.progress(
    `  SQLite floor: ${writeUs.toFixed(0)} µs to store an invoice and its event, ` +
      `${Math.round(writesPerS).toLocaleString('en-US')}/s on the writer thread; a ratio of at most ${bestRatio.toFixed(2)}`,
  );
  return { writeUs, writesPerS, bestRatio };
}
