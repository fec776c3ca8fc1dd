import { createHash } from 'node:crypto';

import jsqr from 'jsqr';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';

import { CHECKOUT_HEADERS, type CheckoutView, renderCheckoutPage } from '../../src/checkout/checkout-page.js';
import type { AdditionalStatus, InvoiceStatus } from '../../src/invoices/invoice-status.js';
import { formatXmr, paymentUri } from '../../src/checkout/payment-uri.js';

// jsqr is CommonJS carrying an ES-style `default`; under NodeNext the
// decoder's type is found there, and at run time it is there too.
const jsQR = jsqr.default;

// A mainnet integrated address that monero-wallet-rpc 0.18 made with
// `make_integrated_address` (the same vector as the address codec tests).
const ADDRESS =
  '4EtqT2G8NoVVmqEmMETxV2GVVjNPEXbsMfJKvCDijPbujFpJ198UuLG3MWxpFrZyeN54wXKJFg9LJK3DH1nBWQ9FdoKV7AsE9QpU1Z6VqJ';
const XMR = 10n ** 12n;
const STATUS_LINE =
  /<div class="status (wait|seen|done|stop)" role="status"><strong>[^<]+<\/strong>[^<]+<\/div>/;
const NOW = 1_750_000_000;

function view(overrides: Partial<CheckoutView> = {}): CheckoutView {
  const amountAtomic = overrides.amountAtomic ?? (3n * XMR) / 2n;
  return {
    invoiceId: 'inv_7Hq2mZ',
    amountAtomic,
    paidAtomic: 0n,
    address: ADDRESS,
    paymentUri: paymentUri({ address: ADDRESS, amountAtomic, description: 'Hosting, 1 month' }),
    status: 'New',
    additionalStatus: 'None',
    expiresAt: NOW + 899,
    now: NOW,
    description: 'Hosting, 1 month',
    confirmationsRequired: 10,
    refreshSeconds: 30,
    ...overrides,
  };
}

function styleText(html: string): string {
  const match = /<style>([\s\S]*?)<\/style>/.exec(html);
  if (!match) throw new Error('no <style> element in the page');
  return match[1] as string;
}

function decodePngDataUri(html: string): string | undefined {
  const match = /<img src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/.exec(html);
  if (!match) return undefined;
  const png = PNG.sync.read(Buffer.from(match[1] as string, 'base64'));
  return jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data;
}

describe('formatXmr', () => {
  it('prints zero as "0"', () => {
    expect(formatXmr(0n)).toBe('0');
  });

  it('prints one piconero with all twelve decimals', () => {
    expect(formatXmr(1n)).toBe('0.000000000001');
  });

  it('prints whole XMR without a decimal point', () => {
    expect(formatXmr(XMR)).toBe('1');
    expect(formatXmr(250n * XMR)).toBe('250');
  });

  it('trims trailing zeros of the fraction', () => {
    expect(formatXmr((3n * XMR) / 2n)).toBe('1.5');
    expect(formatXmr(1_230_000_000n)).toBe('0.00123');
  });

  it('is exact above 2^53 piconero', () => {
    expect(formatXmr(2n ** 53n + 1n)).toBe('9007.199254740993');
    expect(formatXmr(2n ** 64n - 1n)).toBe('18446744.073709551615');
  });

  it('refuses negative amounts', () => {
    expect(() => formatXmr(-1n)).toThrow(RangeError);
  });

  it('refuses a number in place of a bigint', () => {
    expect(() => formatXmr(1 as unknown as bigint)).toThrow(TypeError);
  });
});

describe('paymentUri', () => {
  it('puts the address in the path and the amount in XMR', () => {
    const uri = paymentUri({ address: ADDRESS, amountAtomic: (3n * XMR) / 2n });
    expect(uri).toBe(`monero:${ADDRESS}?tx_amount=1.5`);
  });

  it('writes zero and one piconero as decimals a wallet reads', () => {
    expect(paymentUri({ address: ADDRESS, amountAtomic: 0n })).toBe(
      `monero:${ADDRESS}?tx_amount=0`,
    );
    expect(paymentUri({ address: ADDRESS, amountAtomic: 1n })).toBe(
      `monero:${ADDRESS}?tx_amount=0.000000000001`,
    );
  });

  it('keeps every digit of amounts above 2^53 piconero', () => {
    const uri = paymentUri({ address: ADDRESS, amountAtomic: 2n ** 63n });
    expect(uri).toBe(`monero:${ADDRESS}?tx_amount=9223372.036854775808`);
  });

  it('percent-encodes the description so that it stays one parameter', () => {
    const description = "Tea & cake = 2 (café) 'x'*!/?#";
    const uri = paymentUri({ address: ADDRESS, amountAtomic: XMR, description });

    expect(uri).toBe(
      `monero:${ADDRESS}?tx_amount=1&tx_description=` +
        'Tea%20%26%20cake%20%3D%202%20%28caf%C3%A9%29%20%27x%27%2A%21%2F%3F%23',
    );
    const params = new URLSearchParams(uri.slice(uri.indexOf('?') + 1));
    expect([...params.keys()]).toEqual(['tx_amount', 'tx_description']);
    expect(params.get('tx_description')).toBe(description);
  });

  it('leaves out an empty description', () => {
    const uri = paymentUri({ address: ADDRESS, amountAtomic: XMR, description: '' });
    expect(uri).toBe(`monero:${ADDRESS}?tx_amount=1`);
  });

  it('refuses an address that is not base58 text', () => {
    const address = `${ADDRESS}?tx_amount=0`;
    expect(() => paymentUri({ address, amountAtomic: XMR })).toThrow(TypeError);
    expect(() => paymentUri({ address: '', amountAtomic: XMR })).toThrow(TypeError);
  });
});

describe('renderCheckoutPage', () => {
  it('shows the amount, the address, the QR code and the time left for a new invoice', async () => {
    const html = await renderCheckoutPage(view());

    expect(html).toContain('<p class="amount">1.5 <span>XMR</span></p>');
    expect(html).toContain(`<p class="address">${ADDRESS}</p>`);
    expect(html).toMatch(/<svg [^>]*viewBox="0 0 \d+ \d+"/);
    expect(html).toContain('Time left: <strong>14:59</strong>');
    expect(html).toContain('Waiting for your payment');
  });

  it('links the payment URI for a wallet, with its ampersand escaped', async () => {
    const v = view();
    const html = await renderCheckoutPage(v);

    expect(v.paymentUri).toContain('&tx_description=');
    expect(html).toContain(`<a href="${v.paymentUri.replace('&', '&amp;')}">`);
  });

  it('carries a PNG copy of the QR code that decodes to the payment URI', async () => {
    const v = view();
    expect(decodePngDataUri(await renderCheckoutPage(v))).toBe(v.paymentUri);
  });

  it('refreshes itself while the invoice is new', async () => {
    const html = await renderCheckoutPage(view({ refreshSeconds: 20 }));
    expect(html).toContain('<meta http-equiv="refresh" content="20">');
  });

  it('stops refreshing once the invoice is settled or invalid', async () => {
    for (const status of ['Settled', 'Invalid'] as const) {
      const html = await renderCheckoutPage(view({ status, paidAtomic: (3n * XMR) / 2n }));
      expect(html).not.toContain('http-equiv="refresh"');
    }
  });

  it('keeps refreshing a processing or expired invoice, which may still change', async () => {
    for (const status of ['Processing', 'Expired'] as const) {
      const html = await renderCheckoutPage(view({ status }));
      expect(html).toContain('<meta http-equiv="refresh" content="30">');
    }
  });

  it('shows what is still due on a partly paid invoice', async () => {
    const html = await renderCheckoutPage(
      view({ paidAtomic: XMR / 2n, additionalStatus: 'PaidPartial' }),
    );

    expect(html).toContain('Received 0.5 XMR. Still due: <strong>1 XMR</strong>');
    expect(html).toContain('Partly paid');
  });

  it('offers no address or QR code once payment is no longer wanted', async () => {
    const statuses: InvoiceStatus[] = ['Processing', 'Settled', 'Expired', 'Invalid'];
    for (const status of statuses) {
      const html = await renderCheckoutPage(view({ status }));
      expect(html, status).not.toContain('<svg');
      expect(html, status).not.toContain(ADDRESS);
    }
  });

  it('shows a new invoice past its deadline as expired, without the QR code', async () => {
    const html = await renderCheckoutPage(view({ expiresAt: NOW - 1 }));

    expect(html).toContain('Time left: <strong>expired</strong>');
    expect(html).toContain('This invoice has expired');
    expect(html).not.toContain('<svg');
  });

  it('stops asking for the rest once a partly paid invoice expired', async () => {
    const html = await renderCheckoutPage(
      view({ status: 'Expired', paidAtomic: XMR / 2n, additionalStatus: 'PaidPartial' }),
    );

    expect(html).toContain('Only 0.5 XMR arrived in time.');
    expect(html).toContain('Time left: <strong>expired</strong>');
    expect(html).not.toContain('Still due');
  });

  it('writes hours when more than an hour is left', async () => {
    const html = await renderCheckoutPage(view({ expiresAt: NOW + 3 * 3600 + 65 }));
    expect(html).toContain('Time left: <strong>3:01:05</strong>');
  });

  it('counts confirmations while a payment is processing', async () => {
    const html = await renderCheckoutPage(view({ status: 'Processing', confirmationsRequired: 1 }));
    expect(html).toContain('Payment received');
    expect(html).toContain('after 1 confirmation,');
  });

  it('names the excess on an overpaid settled invoice', async () => {
    const html = await renderCheckoutPage(
      view({ status: 'Settled', additionalStatus: 'PaidOver', paidAtomic: 2n * XMR }),
    );
    expect(html).toContain('You sent 2 XMR, 0.5 XMR more than asked.');
  });

  it('has a status line for every status and additional status', async () => {
    const statuses: InvoiceStatus[] = ['New', 'Processing', 'Settled', 'Expired', 'Invalid'];
    const extras: AdditionalStatus[] = ['None', 'PaidPartial', 'PaidOver', 'PaidLate'];
    for (const status of statuses) {
      for (const additionalStatus of extras) {
        const html = await renderCheckoutPage(view({ status, additionalStatus, paidAtomic: XMR }));
        expect(html, `${status}/${additionalStatus}`).toMatch(STATUS_LINE);
      }
    }
  });

  it('escapes markup in the merchant description and the invoice id', async () => {
    const html = await renderCheckoutPage(
      view({ description: '<script>alert("x")</script>&', invoiceId: '<b>id</b>' }),
    );

    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;');
    expect(html).toContain('Invoice &lt;b&gt;id&lt;/b&gt;');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<b>');
  });

  it('contains no script element in any state', async () => {
    const statuses: InvoiceStatus[] = ['New', 'Processing', 'Settled', 'Expired', 'Invalid'];
    for (const status of statuses) {
      expect(await renderCheckoutPage(view({ status }))).not.toMatch(/<script/i);
    }
  });

  it('refuses a refresh interval outside 1..3600 seconds', async () => {
    await expect(renderCheckoutPage(view({ refreshSeconds: 0 }))).rejects.toThrow(
      /refreshSeconds/,
    );
    await expect(renderCheckoutPage(view({ refreshSeconds: 1.5 }))).rejects.toThrow(RangeError);
  });

  it('refuses a payment link that is not a monero: URI', async () => {
    const bad = view({ paymentUri: 'javascript:alert(1)' });
    await expect(renderCheckoutPage(bad)).rejects.toThrow(TypeError);
  });
});

describe('CHECKOUT_HEADERS', () => {
  it('allows exactly the page stylesheet by its SHA-256 hash', async () => {
    const css = styleText(await renderCheckoutPage(view()));
    const hash = createHash('sha256').update(css, 'utf8').digest('base64');

    const csp = CHECKOUT_HEADERS['Content-Security-Policy'];
    expect(csp).toContain(`style-src 'sha256-${hash}'`);
    expect(csp).not.toContain('unsafe-inline');
  });

  it('denies everything else: scripts, other origins, framing, forms and base URLs', () => {
    const directives = (CHECKOUT_HEADERS['Content-Security-Policy'] ?? '').split('; ');
    expect(directives).toEqual([
      "default-src 'none'",
      expect.stringMatching(/^style-src 'sha256-[A-Za-z0-9+/]{43}='$/),
      'img-src data:',
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ]);
  });

  it('sends the hardening headers and the HTML content type', () => {
    expect(CHECKOUT_HEADERS).toMatchObject({
      'Content-Type': 'text/html; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-store',
      'X-Frame-Options': 'DENY',
    });
  });
});
