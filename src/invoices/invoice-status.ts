export type InvoiceStatus = 'New' | 'Processing' | 'Settled' | 'Expired' | 'Invalid';
export type AdditionalStatus = 'None' | 'PaidPartial' | 'PaidOver' | 'PaidLate';

export type InvoicePayment = {
  state: string;
  amount: bigint;
  first_seen_at: number;
};

export type Standing = {
  status: InvoiceStatus;
  additional: AdditionalStatus;
  received: bigint;
  confirmed: bigint;
};

/**
 * An invoice's status from its payments, with the names BTCPay Server
 * uses. Received funds count while pending or confirmed; an invoice is
 * settled once confirmed funds cover it. Settled and Invalid are final,
 * except that a Processing invoice whose payment a reorg removed becomes
 * Invalid rather than New again: the merchant may already have acted on it.
 */
export function standingOf(
  invoice: { status: InvoiceStatus; amount: bigint; expires_at: number },
  payments: readonly InvoicePayment[],
  now: number,
): Standing {
  let received = 0n;
  let confirmed = 0n;
  let late = false;
  for (const payment of payments) {
    if (payment.state !== 'pending' && payment.state !== 'confirmed') continue;
    received += payment.amount;
    if (payment.state === 'confirmed') confirmed += payment.amount;
    if (payment.first_seen_at >= invoice.expires_at) late = true;
  }

  const status = nextStatus(invoice, received, confirmed, now);
  const additional = additionalStatus(invoice.amount, received, late);
  return { status, additional, received, confirmed };
}

function nextStatus(
  invoice: { status: InvoiceStatus; amount: bigint; expires_at: number },
  received: bigint,
  confirmed: bigint,
  now: number,
): InvoiceStatus {
  if (invoice.status === 'Invalid' || invoice.status === 'Settled') return invoice.status;
  if (received >= invoice.amount) return confirmed >= invoice.amount ? 'Settled' : 'Processing';
  if (invoice.status === 'Processing') return 'Invalid';
  return now >= invoice.expires_at ? 'Expired' : 'New';
}

function additionalStatus(amount: bigint, received: bigint, late: boolean): AdditionalStatus {
  if (received > amount) return 'PaidOver';
  if (late && received > 0n) return 'PaidLate';
  if (received > 0n && received < amount) return 'PaidPartial';
  return 'None';
}
