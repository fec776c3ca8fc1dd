import { paymentUri } from '../checkout/payment-uri.js';
import { standingOf } from '../invoices/invoice-status.js';
import type { InvoicePaymentRow, InvoiceRow } from '../invoices/invoice-store.js';
import { confirmationsOf } from '../storage/payment-store.js';

export type InvoiceJsonContext = { baseUrl: string; walletHeight: number; now: number };

/** The merchant-facing JSON form of an invoice, with every payment listed. */
export function invoiceJson(invoice: InvoiceRow, payments: InvoicePaymentRow[], context: InvoiceJsonContext) {
  const standing = standingOf(invoice, payments, context.now);
  return {
    id: invoice.id,
    merchant_id: invoice.merchant_id,
    status: invoice.status,
    additional_status: invoice.additional_status,
    amount_atomic: invoice.amount.toString(),
    received_atomic: standing.received.toString(),
    confirmed_atomic: standing.confirmed.toString(),
    order_id: invoice.order_id,
    description: invoice.description,
    metadata: JSON.parse(invoice.metadata) as unknown,
    payment_id: invoice.payment_id,
    address: invoice.address,
    payment_uri: invoiceUri(invoice),
    checkout_url: `${context.baseUrl}/pay/${invoice.id}`,
    confirmations_required: invoice.confirmations,
    created_at: invoice.created_at,
    expires_at: invoice.expires_at,
    digest: invoice.digest,
    payments: payments.map((p) => ({
      txid: p.txid,
      amount_atomic: p.amount.toString(),
      state: p.state,
      height: p.height,
      confirmations: confirmationsOf(p.height, context.walletHeight),
      received_at: p.first_seen_at,
      confirmed_at: p.confirmed_at,
    })),
  };
}

export function invoiceUri(invoice: InvoiceRow): string {
  return paymentUri({
    address: invoice.address,
    amountAtomic: invoice.amount,
    ...(invoice.description ? { description: invoice.description } : {}),
  });
}
