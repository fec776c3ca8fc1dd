import { createHash } from 'node:crypto';

import QRCode from 'qrcode';

import type { AdditionalStatus, InvoiceStatus } from '../invoices/invoice-status.js';
import { formatXmr } from './payment-uri.js';

/**
 * The customer's checkout page for one invoice, rendered on the server as
 * plain HTML: no script, no third-party resource, no web font, so it works
 * in Tor Browser's "safest" mode. It keeps itself current with a meta
 * refresh rather than polling from JavaScript.
 */

export type CheckoutView = {
  invoiceId: string;
  amountAtomic: bigint;
  paidAtomic: bigint;
  /** The integrated address the customer pays to. */
  address: string;
  /**
   * The `monero:` URI shown as the QR code and the wallet link. When the
   * invoice is partly paid it should ask for the amount still due.
   */
  paymentUri: string;
  status: InvoiceStatus;
  additionalStatus: AdditionalStatus;
  /** Unix seconds. */
  expiresAt: number;
  /** Unix seconds; passed in so that the page is a pure function of the view. */
  now: number;
  /** Merchant-supplied text; escaped like everything else. */
  description?: string;
  confirmationsRequired: number;
  /** Seconds between the page's own reloads while the invoice can still change. */
  refreshSeconds: number;
};

// One stylesheet, inlined and allowed by its hash alone. Any edit to this
// string changes the hash, which is computed below from the same string.
const CSS = [
  ':root{color-scheme:light}',
  '*{box-sizing:border-box}',
  'html{background:#eef1ee}',
  'body{margin:0;padding:16px 12px;color:#1e2928;line-height:1.45;',
  'font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}',
  'main{max-width:27rem;margin:0 auto;padding:20px;background:#fff;',
  'border:1px solid #d5dcd6;border-radius:12px}',
  'h1{margin:0 0 4px;font-size:1rem;font-weight:600;color:#4d5b59;overflow-wrap:anywhere}',
  '.for{margin:0 0 14px;overflow-wrap:anywhere}',
  '.status{margin:0 0 18px;padding:10px 12px;border-left:4px solid;border-radius:6px}',
  '.status strong{display:block;font-size:1.1rem}',
  '.wait{background:#eaf1f8;border-color:#3a6ea5}',
  '.seen{background:#fbf3e2;border-color:#a8741a}',
  '.done{background:#e7f3eb;border-color:#2e7a48}',
  '.stop{background:#f6ebeb;border-color:#a33a3a}',
  '.label{margin:0;font-size:.8rem;letter-spacing:.04em;text-transform:uppercase;color:#5a6866}',
  // Twelve decimals must fit one line of a 360 px phone at this size.
  '.amount{margin:0 0 6px;font-size:clamp(1.3rem,7vw,2rem);font-weight:700;line-height:1.2;',
  'font-variant-numeric:tabular-nums;overflow-wrap:anywhere;color:#12302c}',
  '.amount span{font-size:1.1rem;font-weight:600;color:#5a6866}',
  '.due{margin:0 0 6px;font-size:1.05rem}',
  '.qr{position:relative;max-width:20rem;margin:14px auto}',
  '.qr img{display:block;width:100%;height:auto;image-rendering:pixelated}',
  '.qr svg{position:absolute;top:0;left:0;width:100%;height:100%}',
  '.address{margin:2px 0 14px;padding:10px;background:#f3f6f3;border:1px solid #d5dcd6;',
  'border-radius:8px;font-size:.95rem;word-break:break-all;overflow-wrap:anywhere;',
  'user-select:all;-webkit-user-select:all;',
  'font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace}',
  '.wallet a{display:block;padding:12px;border-radius:8px;background:#1f4f7a;color:#fff;',
  'font-weight:600;text-align:center;text-decoration:none}',
  '.time{margin:6px 0 0;font-size:1.05rem}',
  '.time strong{font-variant-numeric:tabular-nums}',
  '.note{margin:12px 0 0;font-size:.85rem;color:#5a6866}',
].join('');

const STYLE_HASH = `sha256-${createHash('sha256').update(CSS, 'utf8').digest('base64')}`;

/**
 * Response headers for the page. The CSP allows the one inline stylesheet
 * by hash, `data:` images for the PNG copy of the QR code, and nothing
 * else: with no `script-src`, markup that slipped through escaping still
 * could not run.
 */
export const CHECKOUT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': [
    "default-src 'none'",
    `style-src '${STYLE_HASH}'`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'X-Frame-Options': 'DENY',
});

type Tone = 'wait' | 'seen' | 'done' | 'stop';
type StatusText = { tone: Tone; headline: string; detail: string };

const FINAL_STATUSES: ReadonlySet<InvoiceStatus> = new Set(['Settled', 'Invalid']);
const MAX_REFRESH_SECONDS = 3600;
// Modules of white around the code, as the QR specification asks.
const QR_MARGIN = 4;
// Pixels per module in the PNG: sharp on a phone at twice the CSS size.
const QR_PNG_SCALE = 8;

/** The whole HTML document for one invoice as the customer should see it now. */
export async function renderCheckoutPage(view: CheckoutView): Promise<string> {
  checkView(view);

  const payable = view.status === 'New' && view.now < view.expiresAt;
  const refreshes = !FINAL_STATUSES.has(view.status);
  const qr = payable ? await qrCodeHtml(view.paymentUri) : '';

  return [
    head(view, refreshes),
    '<body><main>',
    `<h1>Invoice ${escapeHtml(view.invoiceId)}</h1>`,
    view.description ? `<p class="for">${escapeHtml(view.description)}</p>` : '',
    statusBlock(statusText(view)),
    amountBlock(view),
    timeBlock(view),
    payable ? paymentBlock(view, qr) : '',
    refreshes
      ? `<p class="note">This page updates itself every ${view.refreshSeconds} seconds.</p>`
      : '',
    '</main></body></html>',
  ].join('\n');
}

function head(view: CheckoutView, refreshes: boolean): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    refreshes ? `<meta http-equiv="refresh" content="${view.refreshSeconds}">` : '',
    `<title>Invoice ${escapeHtml(view.invoiceId)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
  ].join('\n');
}

function statusBlock(text: StatusText): string {
  return (
    `<div class="status ${text.tone}" role="status">` +
    `<strong>${escapeHtml(text.headline)}</strong>${escapeHtml(text.detail)}</div>`
  );
}

function amountBlock(view: CheckoutView): string {
  const lines = [
    '<p class="label">Amount</p>',
    `<p class="amount">${formatXmr(view.amountAtomic)} <span>XMR</span></p>`,
  ];
  // What is still due is worth saying only while it may still be paid.
  const due = view.amountAtomic - view.paidAtomic;
  if (view.status === 'New' && view.paidAtomic > 0n && due > 0n) {
    lines.push(
      `<p class="due">Received ${formatXmr(view.paidAtomic)} XMR. ` +
        `Still due: <strong>${formatXmr(due)} XMR</strong></p>`,
    );
  }
  return lines.join('\n');
}

function paymentBlock(view: CheckoutView, qr: string): string {
  return [
    `<div class="qr">${qr}</div>`,
    '<p class="label">Send to this address</p>',
    `<p class="address">${escapeHtml(view.address)}</p>`,
    `<p class="wallet"><a href="${escapeHtml(view.paymentUri)}">Open in wallet</a></p>`,
  ].join('\n');
}

// The deadline matters only while the customer may still pay; once a
// payment is seen, a countdown would only alarm them.
function timeBlock(view: CheckoutView): string {
  if (view.status !== 'New' && view.status !== 'Expired') return '';
  const left = view.status === 'Expired' ? 0 : view.expiresAt - view.now;
  return `<p class="time">Time left: <strong>${timeLeft(left)}</strong></p>`;
}

/** `m:ss`, or `h:mm:ss` from an hour up; "expired" once nothing is left. */
function timeLeft(seconds: number): string {
  if (seconds <= 0) return 'expired';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** The human status line for each status and additional status. */
function statusText(view: CheckoutView): StatusText {
  const paid = `${formatXmr(view.paidAtomic)} XMR`;
  switch (view.status) {
    case 'New':
      return newStatusText(view, paid);
    case 'Processing':
      return processingStatusText(view);
    case 'Settled':
      return settledStatusText(view, paid);
    case 'Expired':
      return expiredStatusText(view, paid);
    case 'Invalid':
      return {
        tone: 'stop',
        headline: 'Payment failed',
        detail:
          'The payment did not confirm on the Monero network. ' +
          'Contact the merchant before sending anything again.',
      };
  }
}

function newStatusText(view: CheckoutView, paid: string): StatusText {
  if (view.now >= view.expiresAt) return expiredStatusText(view, paid);
  if (view.additionalStatus === 'PaidPartial') {
    return {
      tone: 'wait',
      headline: 'Partly paid',
      detail: `We received ${paid}. Send the rest to the same address before time runs out.`,
    };
  }
  return {
    tone: 'wait',
    headline: 'Waiting for your payment',
    detail: 'Send the amount below to the address shown, from any Monero wallet.',
  };
}

function processingStatusText(view: CheckoutView): StatusText {
  const n = view.confirmationsRequired;
  const confirmations = `${n} confirmation${n === 1 ? '' : 's'}`;
  const wait = `It counts as paid after ${confirmations}, about two minutes each.`;
  const headlines: Record<AdditionalStatus, string> = {
    None: 'Payment received',
    PaidPartial: 'Partial payment received',
    PaidOver: 'Payment received, more than the amount due',
    PaidLate: 'Payment received after the invoice expired',
  };
  const extra =
    view.additionalStatus === 'PaidLate' ? ' The merchant decides whether to accept it.' : '';
  return { tone: 'seen', headline: headlines[view.additionalStatus], detail: wait + extra };
}

function settledStatusText(view: CheckoutView, paid: string): StatusText {
  const excess = view.paidAtomic - view.amountAtomic;
  if (view.additionalStatus === 'PaidOver' && excess > 0n) {
    return {
      tone: 'done',
      headline: 'Paid',
      detail:
        `You sent ${paid}, ${formatXmr(excess)} XMR more than asked. ` +
        'Contact the merchant about it.',
    };
  }
  const late = view.additionalStatus === 'PaidLate' ? ' It arrived late and was accepted.' : '';
  return { tone: 'done', headline: 'Paid', detail: `The payment is confirmed.${late} Thank you.` };
}

function expiredStatusText(view: CheckoutView, paid: string): StatusText {
  const headline = 'This invoice has expired';
  switch (view.additionalStatus) {
    case 'PaidPartial':
      return {
        tone: 'stop',
        headline,
        detail: `Only ${paid} arrived in time. Send nothing more; contact the merchant.`,
      };
    case 'PaidLate':
    case 'PaidOver':
      return {
        tone: 'stop',
        headline,
        detail: `A payment of ${paid} arrived after it expired. Contact the merchant.`,
      };
    case 'None':
      return {
        tone: 'stop',
        headline,
        detail: 'Do not send a payment to it. Ask the merchant for a new invoice.',
      };
  }
}

/**
 * The QR code twice, stacked: an inline SVG on top and the same code as a
 * PNG beneath it. Tor Browser's "Safest" level turns SVG off (its
 * `svg.disabled` pref), which leaves the SVG an empty box and the PNG in
 * view; everywhere else the crisper SVG covers the PNG exactly, since both
 * draw the same modules with the same quiet zone.
 */
async function qrCodeHtml(uri: string): Promise<string> {
  const options = { errorCorrectionLevel: 'M', margin: QR_MARGIN } as const;
  const [svg, png] = await Promise.all([
    QRCode.toString(uri, { ...options, type: 'svg' }),
    QRCode.toDataURL(uri, { ...options, type: 'image/png', scale: QR_PNG_SCALE }),
  ]);
  return (
    `<img src="${png}" alt="QR code of the payment request">` +
    svg.trim().replace('<svg ', '<svg aria-hidden="true" ')
  );
}

function checkView(view: CheckoutView): void {
  for (const key of ['amountAtomic', 'paidAtomic'] as const) {
    if (typeof view[key] !== 'bigint' || view[key] < 0n) {
      throw new RangeError(`${key} must be a bigint >= 0`);
    }
  }
  for (const key of ['expiresAt', 'now', 'confirmationsRequired'] as const) {
    if (!Number.isSafeInteger(view[key]) || view[key] < 0) {
      throw new RangeError(`${key} must be an integer >= 0, got ${view[key]}`);
    }
  }
  const refresh = view.refreshSeconds;
  if (!Number.isSafeInteger(refresh) || refresh < 1 || refresh > MAX_REFRESH_SECONDS) {
    throw new RangeError(`refreshSeconds must be an integer in 1..${MAX_REFRESH_SECONDS}`);
  }
  // Only a wallet URI may become a link; anything else is a caller's bug.
  if (!view.paymentUri.startsWith('monero:')) {
    throw new TypeError('paymentUri must be a monero: URI');
  }
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}
