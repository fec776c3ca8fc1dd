import { mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import jsqr from 'jsqr';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CHECKOUT_HEADERS,
  type CheckoutView,
  renderCheckoutPage,
} from '../../src/checkout/checkout-page.js';
import { paymentUri } from '../../src/checkout/payment-uri.js';
import {
  assertChromium,
  consoleMessages,
  dumpDom,
  screenshot,
  type ViewportSize,
} from '../support/chromium.js';

// jsqr is CommonJS carrying an ES-style `default`; under NodeNext the
// decoder's type is found there, and at run time it is there too.
const jsQR = jsqr.default;

// A mainnet integrated address that monero-wallet-rpc 0.18 made with
// `make_integrated_address` (the same vector as the address codec tests).
const ADDRESS =
  '4EtqT2G8NoVVmqEmMETxV2GVVjNPEXbsMfJKvCDijPbujFpJ198UuLG3MWxpFrZyeN54wXKJFg9LJK3DH1nBWQ9FdoKV7AsE9QpU1Z6VqJ';
const AMOUNT = 1_234_567_890_123n;
const NOW = 1_750_000_000;
const PHONE: ViewportSize = { width: 390, height: 844 };
const DESKTOP: ViewportSize = { width: 1280, height: 900 };
// The page's `html` background; Chromium's own default is white.
const PAGE_BACKGROUND = [0xee, 0xf1, 0xee];
const WHITE = [0xff, 0xff, 0xff];
// Set to keep the screenshots for a person to look at.
const SCREENSHOT_DIR = process.env.CHECKOUT_SCREENSHOT_DIR;

const NEW_VIEW: CheckoutView = {
  invoiceId: 'inv_4kT9wQ',
  amountAtomic: AMOUNT,
  paidAtomic: 0n,
  address: ADDRESS,
  paymentUri: paymentUri({ address: ADDRESS, amountAtomic: AMOUNT, description: 'VPN, 3 months' }),
  status: 'New',
  additionalStatus: 'None',
  expiresAt: NOW + 14 * 60 + 5,
  now: NOW,
  description: 'VPN, 3 months',
  confirmationsRequired: 10,
  refreshSeconds: 30,
};

const VIEWS: Record<string, CheckoutView> = {
  new: NEW_VIEW,
  settled: { ...NEW_VIEW, status: 'Settled', paidAtomic: AMOUNT },
};

/** The page as the public listener serves it, plus two altered copies. */
function checkoutApp(): Hono {
  const app = new Hono();
  const page = async (id: string) => {
    const view = VIEWS[id];
    return view === undefined ? undefined : renderCheckoutPage(view);
  };

  app.get('/pay/:id', async (c) => {
    const html = await page(c.req.param('id'));
    return html === undefined ? c.notFound() : c.body(html, 200, { ...CHECKOUT_HEADERS });
  });
  // The same page under a policy whose style hash is wrong: shows what a
  // blocked stylesheet looks like, so that the checks below can fail.
  app.get('/wrong-hash/:id', async (c) => {
    const html = await page(c.req.param('id'));
    const csp = (CHECKOUT_HEADERS['Content-Security-Policy'] ?? '').replace(
      /'sha256-[^']+'/,
      `'sha256-${'A'.repeat(43)}='`,
    );
    const headers = { ...CHECKOUT_HEADERS, 'Content-Security-Policy': csp };
    return html === undefined ? c.notFound() : c.body(html, 200, headers);
  });
  // The page as Tor Browser at "Safest" lays it out: SVG turned off.
  app.get('/without-svg/:id', async (c) => {
    const html = (await page(c.req.param('id')))?.replace(/<svg[\s\S]*?<\/svg>/, '');
    return html === undefined ? c.notFound() : c.body(html, 200, { ...CHECKOUT_HEADERS });
  });
  return app;
}

async function listen(app: Hono): Promise<Server> {
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

function decodeQr(png: PNG): string | undefined {
  return jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data;
}

function pixel(png: PNG, x: number, y: number): number[] {
  const at = (y * png.width + x) * 4;
  return [png.data[at], png.data[at + 1], png.data[at + 2]] as number[];
}

/** Text a reader sees, roughly: tags dropped, whitespace collapsed. */
function visibleText(dom: string): string {
  const body = dom.slice(dom.indexOf('<body'));
  return body
    .replace(/<[^>]*>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

async function shoot(url: string, size: ViewportSize, name: string): Promise<PNG> {
  const bytes = await screenshot(url, size);
  if (SCREENSHOT_DIR) {
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    await writeFile(join(SCREENSHOT_DIR, `${name}.png`), bytes);
  }
  return PNG.sync.read(bytes);
}

// Each Chromium run takes one to a few seconds, more on a loaded machine.
describe('checkout page in headless Chromium, JavaScript off', { timeout: 90_000 }, () => {
  let server: Server;
  let origin: string;
  let phoneShot: Promise<PNG> | undefined;
  // Three checks read the same phone screenshot; it is taken once.
  const phone = () => (phoneShot ??= shoot(`${origin}/pay/new`, PHONE, 'checkout-phone'));

  beforeAll(async () => {
    assertChromium();
    server = await listen(checkoutApp());
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it('shows the amount, the address, the time left and the status', async () => {
    const text = visibleText(await dumpDom(`${origin}/pay/new`));

    expect(text).toContain('Amount 1.234567890123 XMR');
    expect(text).toContain(`Send to this address ${ADDRESS}`);
    expect(text).toContain('Time left: 14:05');
    expect(text).toContain('Waiting for your payment');
    expect(text).toContain('VPN, 3 months');
  });

  it('draws a QR code on a phone screen that decodes to the payment URI', async () => {
    expect(decodeQr(await phone())).toBe(NEW_VIEW.paymentUri);
  });

  it('keeps everything inside the phone screen, the long address included', async () => {
    const png = await phone();

    // The card stops 12 px short of the right edge; anything that spilled
    // out of it (an unbroken address, a wide QR code) would cross x = w-4.
    const x = png.width - 4;
    for (let y = 0; y < png.height; y += 1) {
      expect(pixel(png, x, y), `pixel at ${x},${y}`).toEqual(PAGE_BACKGROUND);
    }
  });

  it('draws a QR code on a desktop screen that decodes to the payment URI', async () => {
    const png = await shoot(`${origin}/pay/new`, DESKTOP, 'checkout-desktop');

    expect(decodeQr(png)).toBe(NEW_VIEW.paymentUri);
  });

  it('falls back to the PNG QR code where SVG is turned off', async () => {
    const png = await shoot(`${origin}/without-svg/new`, PHONE, 'checkout-phone-without-svg');

    expect(decodeQr(png)).toBe(NEW_VIEW.paymentUri);
  });

  it('applies its stylesheet under its own Content-Security-Policy', async () => {
    const png = await phone();
    const log = await consoleMessages(`${origin}/pay/new`);

    expect(pixel(png, 2, 2)).toEqual(PAGE_BACKGROUND);
    expect(log.filter((line) => line.includes('Content Security Policy'))).toEqual([]);
  });

  it('loses its stylesheet, visibly and with a logged violation, under a wrong hash', async () => {
    const png = await shoot(`${origin}/wrong-hash/new`, PHONE, 'checkout-phone-wrong-hash');
    const log = await consoleMessages(`${origin}/wrong-hash/new`);

    expect(pixel(png, 2, 2)).toEqual(WHITE);
    expect(log.some((line) => line.includes('Content Security Policy'))).toBe(true);
  });

  it('shows a settled invoice as paid, with no QR code and no refresh', async () => {
    const dom = await dumpDom(`${origin}/pay/settled`);

    expect(visibleText(dom)).toContain('Paid The payment is confirmed. Thank you.');
    expect(dom).not.toContain('<svg');
    expect(dom).not.toContain('http-equiv="refresh"');
  });
});
