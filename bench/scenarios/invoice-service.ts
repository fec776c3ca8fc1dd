import type { Harness, ServiceProcess } from '../harness.js';
import { closedPortUrl } from '../http-measure.js';
import { type BenchMerchant, benchPrimaryAddress, createBenchMerchant } from '../merchant.js';
import type { RequestPlan } from '../request-plans.js';
import { basePayments, seededService } from './seeded-service.js';

/** A service that can create invoices, with one merchant registered on it. */
export async function startInvoiceService(
  harness: Harness,
  label: string,
): Promise<{ service: ServiceProcess; merchant: BenchMerchant; plan: RequestPlan }> {
  const { service } = await seededService(
    harness,
    label,
    (db) => db.addPayments(basePayments(harness)),
    { primary_address: benchPrimaryAddress() },
  );
  try {
    const merchant = await createBenchMerchant(service.internalUrl, await closedPortUrl());
    const plan: RequestPlan = { kind: 'signed-invoice', privateKey: merchant.privateKey, keyId: merchant.keyId };
    return { service, merchant, plan };
  } catch (err) {
    await service.child.stop();
    throw err;
  }
}
