import type { Hono } from 'hono';

import { CHECKOUT_HEADERS, renderCheckoutPage } from '../checkout/checkout-page.js';
import { paymentUri } from '../checkout/payment-uri.js';
import { NotFoundError } from '../errors.js';
import type { InvoiceService } from '../invoices/invoice-service.js';
import { standingOf } from '../invoices/invoice-status.js';

const INVOICE_ID = /^inv_[A-Za-z0-9_-]{22}$/;

/** GET /pay/{invoice_id}: the customer's checkout page, no JavaScript. */
export function registerCheckoutRoute(app: Hono, invoices: InvoiceService): void {
  app.get('/pay/:id', async (c) => {
    const id = c.req.param('id');
    if (!INVOICE_ID.test(id)) throw new NotFoundError('unknown invoice');
    const invoice = invoices.getPublic(id);
    const now = Math.floor(Date.now() / 1000);
    const standing = standingOf(invoice, invoices.payments(invoice), now);
    const due = invoice.amount > standing.received ? invoice.amount - standing.received : 0n;

    const html = await renderCheckoutPage({
      invoiceId: invoice.id,
      amountAtomic: invoice.amount,
      paidAtomic: standing.received,
      address: invoice.address,
      paymentUri: paymentUri({
        address: invoice.address,
        amountAtomic: due > 0n ? due : invoice.amount,
        ...(invoice.description ? { description: invoice.description } : {}),
      }),
      status: invoice.status,
      additionalStatus: invoice.additional_status,
      expiresAt: invoice.expires_at,
      now,
      ...(invoice.description ? { description: invoice.description } : {}),
      confirmationsRequired: invoice.confirmations,
      refreshSeconds: 15,
    });
    return c.body(html, 200, { ...CHECKOUT_HEADERS });
  });
}
