import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { ConflictError, NotFoundError, UnavailableError } from '../../src/errors.js';
import type { InvoiceInput } from '../../src/invoices/invoice-input.js';
import { canonicalInvoice, InvoiceService } from '../../src/invoices/invoice-service.js';
import { type InvoiceRow, InvoiceStore } from '../../src/invoices/invoice-store.js';
import { MerchantStore } from '../../src/merchants/merchant-store.js';
import { decodeAddress, encodeAddress } from '../../src/monero/address.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { type PaymentEvent, PaymentStore, type Transfer } from '../../src/storage/payment-store.js';
import { TicketStore } from '../../src/storage/ticket-store.js';
import { Secrets } from '../../src/tickets/secrets.js';
import { Outbox } from '../../src/webhooks/outbox.js';
import { randomTxid, tempDir } from '../support/temp-service.js';

const DEFAULT_CONFIRMATIONS = 10;
const DEFAULT_EXPIRY_S = 3_600;
const DUST_FLOOR = 1_000n;
const AMOUNT = 5_000_000_000_000n;

function primaryAddress(): string {
  return encodeAddress({
    network: 'mainnet',
    kind: 'standard',
    publicSpendKey: randomBytes(32),
    publicViewKey: randomBytes(32),
  });
}

function input(overrides: Partial<InvoiceInput> = {}): InvoiceInput {
  return {
    amount: AMOUNT,
    orderId: null,
    description: null,
    metadata: {},
    expiresIn: undefined,
    confirmations: undefined,
    ...overrides,
  };
}

type HarnessOptions = { primaryAddress?: string | undefined };

/**
 * The invoice layer on a temp database, wired as Service wires it, with a
 * fake clock and a simulated chain. `pay` records a transfer in a new block
 * the way the monitor would; scans start at the new wallet height, so
 * nothing is orphaned unless `reorg` asks for it.
 */
class InvoiceHarness {
  readonly db: Db;
  readonly merchants: MerchantStore;
  readonly store: InvoiceStore;
  readonly outbox: Outbox;
  readonly secrets = new Secrets(randomBytes(32));
  readonly payments: PaymentStore;
  readonly ticketStore: TicketStore;
  readonly invoices: InvoiceService;
  readonly merchantId: string;
  clock = 1_800_000_000;
  height = 1_000;
  committed = 0;
  /** Makes the next scan's transaction throw after the invoice layer wrote its changes. */
  failNextScan = false;

  constructor(options: HarnessOptions = {}) {
    this.db = openDatabase(join(tempDir(), 'stronghold.db'));
    onTestFinished(() => {
      if (this.db.open) this.db.close();
    });
    this.merchants = new MerchantStore(this.db);
    this.store = new InvoiceStore(this.db);
    this.outbox = new Outbox(this.db);
    this.ticketStore = new TicketStore(this.db);
    const primary = 'primaryAddress' in options ? options.primaryAddress : primaryAddress();

    this.invoices = new InvoiceService({
      db: this.db,
      store: this.store,
      outbox: this.outbox,
      secrets: this.secrets,
      digest: async (text) => createHash('sha256').update(text, 'utf8').digest('hex'),
      primaryAddress: () => primary,
      defaultConfirmations: DEFAULT_CONFIRMATIONS,
      defaultExpirySeconds: DEFAULT_EXPIRY_S,
      onEventsCommitted: () => this.committed++,
      now: () => this.clock,
    });
    const store = this.store;
    this.payments = new PaymentStore(this.db, {
      dustFloor: DUST_FLOOR,
      termsOf: (tag) => {
        const invoice = store.byTag(tag);
        return {
          requiredConfirmations: invoice?.confirmations ?? DEFAULT_CONFIRMATIONS,
          invoiceSeq: invoice?.seq ?? null,
        };
      },
      onApplied: (events, scan) => {
        this.invoices.onPaymentEvents(events, scan.now);
        if (this.failNextScan) {
          this.failNextScan = false;
          throw new Error('the scan failed after the invoice layer wrote');
        }
      },
    });
    this.merchantId = this.addMerchant('Shop');
  }

  addMerchant(name: string): string {
    const publicKey = randomBytes(32).toString('base64url');
    const webhookUrl = 'http://127.0.0.1:9/hook';
    return this.merchants.add({ name, public_key: publicKey, webhook_url: webhookUrl }, this.clock)
      .id;
  }

  async create(overrides: Partial<InvoiceInput> = {}, key: string | null = null) {
    return (await this.invoices.create(this.merchantId, input(overrides), key)).invoice;
  }

  transfer(pid: string, amount: bigint): Transfer {
    return {
      txid: randomTxid(),
      major: 0,
      minor: 0,
      pidTag: this.secrets.pidTag(Buffer.from(pid, 'hex')),
      amount,
      height: this.height + 1,
      unlockTime: 0n,
      doubleSpendSeen: false,
    };
  }

  /** Pays an invoice in a new block with `blocksOnTop` blocks mined after it. */
  pay(invoice: InvoiceRow, amount: bigint, blocksOnTop = 0): PaymentEvent[] {
    return this.payPid(invoice.payment_id, amount, blocksOnTop);
  }

  payPid(pid: string, amount: bigint, blocksOnTop = 0): PaymentEvent[] {
    const transfer = this.transfer(pid, amount);
    this.height = transfer.height + blocksOnTop;
    return this.scan([transfer], this.height);
  }

  mine(blocks: number): PaymentEvent[] {
    this.height += blocks;
    return this.scan([], this.height);
  }

  /** A scan that covers every block above `from` and finds none of the transfers there. */
  reorg(from: number): PaymentEvent[] {
    return this.scan([], from);
  }

  scan(transfers: Transfer[], from: number): PaymentEvent[] {
    return this.payments.apply({ transfers, walletHeight: this.height, from, now: this.clock });
  }

  current(invoice: InvoiceRow): InvoiceRow {
    return this.invoices.get(invoice.merchant_id, invoice.id);
  }

  /** Webhook event types written for one invoice, in outbox order. */
  events(invoice: InvoiceRow): string[] {
    return this.db
      .prepare('SELECT type FROM webhook_deliveries WHERE invoice_id = ? ORDER BY seq')
      .pluck()
      .all(invoice.id) as string[];
  }

  /** The body of the last event of `type` written for an invoice. */
  lastBody(invoice: InvoiceRow, type: string): Record<string, unknown> {
    const text = this.db
      .prepare(
        'SELECT body FROM webhook_deliveries WHERE invoice_id = ? AND type = ? ORDER BY seq DESC',
      )
      .pluck()
      .get(invoice.id, type);
    return JSON.parse(text as string) as Record<string, unknown>;
  }

  count(table: string): number {
    return this.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  }
}

function statusOf(harness: InvoiceHarness, invoice: InvoiceRow) {
  const row = harness.current(invoice);
  return [row.status, row.additional_status];
}

describe('InvoiceService.create', () => {
  it('creates a New invoice with its own payment id inside its integrated address', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ metadata: { buyer: 'b-17' }, description: 'Pro plan' });

    expect(invoice).toMatchObject({
      merchant_id: harness.merchantId,
      status: 'New',
      additional_status: 'None',
      amount: AMOUNT,
      description: 'Pro plan',
      metadata: '{"buyer":"b-17"}',
      confirmations: DEFAULT_CONFIRMATIONS,
      created_at: harness.clock,
      expires_at: harness.clock + DEFAULT_EXPIRY_S,
    });
    expect(invoice.id).toMatch(/^inv_[A-Za-z0-9_-]{22}$/);
    expect(invoice.payment_id).toMatch(/^[0-9a-f]{16}$/);
    const decoded = decodeAddress(invoice.address);
    expect(decoded).toMatchObject({ network: 'mainnet', kind: 'integrated' });
    expect(Buffer.from(decoded.paymentId!).toString('hex')).toBe(invoice.payment_id);
    expect(invoice.pid_tag).toEqual(harness.secrets.pidTag(Buffer.from(invoice.payment_id, 'hex')));
  });

  it('stores as digest the SHA-256 of the canonical form of the fixed fields', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ orderId: 'o-1', metadata: { b: 1, a: { z: 2, y: 3 } } });

    const canonical = canonicalInvoice(invoice);
    expect(canonical).toContain('"metadata":{"a":{"y":3,"z":2},"b":1}');
    expect(canonical).toContain(`"amount_atomic":"${AMOUNT}"`);
    expect(invoice.digest).toBe(createHash('sha256').update(canonical).digest('hex'));
  });

  it('gives each invoice a different id, payment id and address', async () => {
    const harness = new InvoiceHarness();
    const [a, b] = [await harness.create(), await harness.create()];

    expect(a!.id).not.toBe(b!.id);
    expect(a!.payment_id).not.toBe(b!.payment_id);
    expect(a!.address).not.toBe(b!.address);
  });

  it('writes InvoiceCreated with the metadata in the transaction that inserts the invoice', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ metadata: { orderRef: 'r9' } });

    expect(harness.events(invoice)).toEqual(['InvoiceCreated']);
    expect(harness.lastBody(invoice, 'InvoiceCreated')).toMatchObject({
      type: 'InvoiceCreated',
      invoiceId: invoice.id,
      storeId: harness.merchantId,
      metadata: { orderRef: 'r9' },
    });
    expect(harness.committed).toBe(1);
  });

  it('returns the existing invoice for a reused order id, creating nothing', async () => {
    const harness = new InvoiceHarness();
    const first = await harness.invoices.create(harness.merchantId, input({ orderId: 'A1' }), null);
    const again = await harness.invoices.create(
      harness.merchantId,
      input({ orderId: 'A1', amount: 7n * AMOUNT }),
      null,
    );

    expect(first.created).toBe(true);
    expect(again).toEqual({ invoice: first.invoice, created: false });
    expect(harness.count('invoices')).toBe(1);
    expect(harness.count('webhook_deliveries')).toBe(1);
  });

  it('returns the existing invoice for a reused idempotency key, creating nothing', async () => {
    const harness = new InvoiceHarness();
    const first = await harness.invoices.create(harness.merchantId, input(), 'key-1');
    const again = await harness.invoices.create(harness.merchantId, input(), 'key-1');

    expect(again).toEqual({ invoice: first.invoice, created: false });
    expect(harness.count('invoices')).toBe(1);
  });

  it('keeps order ids and idempotency keys apart between merchants', async () => {
    const harness = new InvoiceHarness();
    const other = harness.addMerchant('Other shop');
    const mine = await harness.invoices.create(harness.merchantId, input({ orderId: 'A1' }), 'k');
    const theirs = await harness.invoices.create(other, input({ orderId: 'A1' }), 'k');

    expect(theirs.created).toBe(true);
    expect(theirs.invoice.id).not.toBe(mine.invoice.id);
    expect(theirs.invoice.merchant_id).toBe(other);
  });

  it('creates exactly one invoice from 20 concurrent requests with one order id', async () => {
    const harness = new InvoiceHarness();
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        harness.invoices.create(harness.merchantId, input({ orderId: 'race' }), null),
      ),
    );

    expect(new Set(results.map((r) => r.invoice.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(harness.count('invoices')).toBe(1);
    expect(harness.events(results[0]!.invoice)).toEqual(['InvoiceCreated']);
  });

  it('creates exactly one invoice from 20 concurrent requests with one idempotency key', async () => {
    const harness = new InvoiceHarness();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => harness.invoices.create(harness.merchantId, input(), 'k1')),
    );

    expect(new Set(results.map((r) => r.invoice.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(harness.count('invoices')).toBe(1);
  });

  it('refuses with UnavailableError and writes nothing while the wallet address is unknown', async () => {
    const harness = new InvoiceHarness({ primaryAddress: undefined });

    await expect(harness.create()).rejects.toBeInstanceOf(UnavailableError);
    expect(harness.count('invoices')).toBe(0);
    expect(harness.count('webhook_deliveries')).toBe(0);
  });
});

describe('InvoiceService lookups', () => {
  it("answers NotFoundError for another merchant's invoice", async () => {
    const harness = new InvoiceHarness();
    const other = harness.addMerchant('Other');
    const invoice = await harness.create();

    expect(() => harness.invoices.get(other, invoice.id)).toThrow(NotFoundError);
    expect(() => harness.invoices.cancel(other, invoice.id)).toThrow(NotFoundError);
    expect(harness.current(invoice).status).toBe('New');
  });

  it("lists a merchant's invoices newest first, page by page, filtered by status", async () => {
    const harness = new InvoiceHarness();
    const other = harness.addMerchant('Other');
    await harness.invoices.create(other, input(), null);
    const created: InvoiceRow[] = [];
    for (let i = 0; i < 5; i++) created.push(await harness.create());
    harness.invoices.cancel(harness.merchantId, created[1]!.id);

    const first = harness.invoices.list(harness.merchantId, undefined, undefined, 2);
    const second = harness.invoices.list(harness.merchantId, undefined, first.nextCursor!, 2);
    const third = harness.invoices.list(harness.merchantId, undefined, second.nextCursor!, 2);
    const invalid = harness.invoices.list(harness.merchantId, 'Invalid', undefined, 10);

    const ids = (page: { invoices: InvoiceRow[] }) => page.invoices.map((i) => i.id);
    const newestFirst = created.map((i) => i.id).reverse();
    expect([...ids(first), ...ids(second), ...ids(third)]).toEqual(newestFirst);
    expect(third.nextCursor).toBeNull();
    expect(ids(invalid)).toEqual([created[1]!.id]);
  });
});

describe('InvoiceService payment lifecycle', () => {
  it('goes New, PaidPartial, Processing, Settled as partial payments add up and confirm', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ metadata: { order: 7 } });

    harness.pay(invoice, 2_000_000_000_000n);
    expect(statusOf(harness, invoice)).toEqual(['New', 'PaidPartial']);
    expect(harness.events(invoice)).toEqual(['InvoiceCreated', 'InvoiceReceivedPayment']);
    expect(harness.lastBody(invoice, 'InvoiceReceivedPayment')).toMatchObject({
      afterExpiration: false,
      metadata: { order: 7 },
      payment: { value: '2000000000000', status: 'pending' },
    });

    harness.pay(invoice, 3_000_000_000_000n);
    expect(statusOf(harness, invoice)).toEqual(['Processing', 'None']);
    expect(harness.events(invoice).slice(2)).toEqual([
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
    ]);

    harness.mine(DEFAULT_CONFIRMATIONS);
    expect(statusOf(harness, invoice)).toEqual(['Settled', 'None']);
    expect(harness.events(invoice)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoicePaymentSettled',
      'InvoicePaymentSettled',
      'InvoiceSettled',
    ]);
    expect(harness.lastBody(invoice, 'InvoiceSettled')).toMatchObject({ overPaid: false });
    const listed = harness.invoices.payments(invoice);
    expect(listed.map((p) => [p.amount, p.state])).toEqual([
      [2_000_000_000_000n, 'confirmed'],
      [3_000_000_000_000n, 'confirmed'],
    ]);
  });

  it('stays Processing while only the first of two payments has confirmed', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    harness.pay(invoice, AMOUNT / 2n, 5);
    harness.pay(invoice, AMOUNT / 2n);

    harness.mine(DEFAULT_CONFIRMATIONS - 6);

    expect(statusOf(harness, invoice)).toEqual(['Processing', 'None']);
    expect(harness.events(invoice).at(-1)).toBe('InvoicePaymentSettled');
    expect(harness.events(invoice)).not.toContain('InvoiceSettled');
  });

  it('reports PaidOver for an overpayment through Processing and Settled', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();

    harness.pay(invoice, AMOUNT + 1n);
    expect(statusOf(harness, invoice)).toEqual(['Processing', 'PaidOver']);
    expect(harness.lastBody(invoice, 'InvoiceProcessing')).toMatchObject({ overPaid: true });

    harness.mine(DEFAULT_CONFIRMATIONS);
    expect(statusOf(harness, invoice)).toEqual(['Settled', 'PaidOver']);
    expect(harness.lastBody(invoice, 'InvoiceSettled')).toMatchObject({ overPaid: true });
  });

  it('settles on first sight, Processing then Settled events in one scan, with 0 confirmations', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ confirmations: 0 });

    harness.pay(invoice, AMOUNT);

    expect(statusOf(harness, invoice)).toEqual(['Settled', 'None']);
    expect(harness.events(invoice)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoicePaymentSettled',
      'InvoiceSettled',
    ]);
  });

  it('takes the required confirmations from the invoice, not from the default', async () => {
    const harness = new InvoiceHarness();
    const quick = await harness.create({ confirmations: 2 });
    const usual = await harness.create();

    harness.pay(quick, AMOUNT);
    harness.pay(usual, AMOUNT);
    harness.mine(2);

    expect(statusOf(harness, quick)).toEqual(['Settled', 'None']);
    expect(statusOf(harness, usual)).toEqual(['Processing', 'None']);
    const required = harness.db
      .prepare('SELECT required_confirmations FROM payments WHERE invoice_seq = ?')
      .pluck();
    expect(required.get(quick.seq)).toBe(2);
    expect(required.get(usual.seq)).toBe(DEFAULT_CONFIRMATIONS);
  });

  it('ignores dust sent to an invoice', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ amount: 10_000n });

    harness.pay(invoice, DUST_FLOOR - 1n, DEFAULT_CONFIRMATIONS);

    expect(statusOf(harness, invoice)).toEqual(['New', 'None']);
    expect(harness.events(invoice)).toEqual(['InvoiceCreated']);
    expect(harness.invoices.payments(invoice).map((p) => p.state)).toEqual(['dust']);
  });
});

describe('InvoiceService expiry', () => {
  it('expires a New invoice only once its time has come, with InvoiceExpired once', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ expiresIn: 600 });

    harness.clock += 599;
    expect(harness.invoices.expireDue()).toBe(0);
    harness.clock += 1;
    expect(harness.invoices.expireDue()).toBe(1);
    expect(harness.invoices.expireDue()).toBe(0);

    expect(statusOf(harness, invoice)).toEqual(['Expired', 'None']);
    expect(harness.events(invoice)).toEqual(['InvoiceCreated', 'InvoiceExpired']);
    expect(harness.lastBody(invoice, 'InvoiceExpired')).toMatchObject({ partiallyPaid: false });
  });

  it('expires a partly paid invoice as Expired with PaidPartial', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ expiresIn: 600 });
    harness.pay(invoice, AMOUNT / 5n);

    harness.clock += 600;
    harness.invoices.expireDue();

    expect(statusOf(harness, invoice)).toEqual(['Expired', 'PaidPartial']);
    expect(harness.lastBody(invoice, 'InvoiceExpired')).toMatchObject({ partiallyPaid: true });
  });

  it('credits a payment after expiry, reported PaidLate, through Processing to Settled', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ expiresIn: 600 });
    harness.clock += 700;
    harness.invoices.expireDue();

    harness.pay(invoice, AMOUNT);
    expect(statusOf(harness, invoice)).toEqual(['Processing', 'PaidLate']);
    expect(harness.lastBody(invoice, 'InvoiceReceivedPayment')).toMatchObject({
      afterExpiration: true,
    });

    harness.mine(DEFAULT_CONFIRMATIONS);
    expect(statusOf(harness, invoice)).toEqual(['Settled', 'PaidLate']);
    expect(harness.events(invoice)).toEqual([
      'InvoiceCreated',
      'InvoiceExpired',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoicePaymentSettled',
      'InvoiceSettled',
    ]);
    expect(harness.invoices.payments(invoice)).toEqual([
      expect.objectContaining({ amount: AMOUNT, state: 'confirmed' }),
    ]);
  });

  it('keeps an expired invoice Expired with PaidLate after a late partial payment', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ expiresIn: 600 });
    harness.clock += 600;
    harness.invoices.expireDue();

    harness.pay(invoice, AMOUNT / 2n, DEFAULT_CONFIRMATIONS);

    expect(statusOf(harness, invoice)).toEqual(['Expired', 'PaidLate']);
    expect(harness.events(invoice)).toEqual([
      'InvoiceCreated',
      'InvoiceExpired',
      'InvoiceReceivedPayment',
      'InvoicePaymentSettled',
    ]);
  });

  it('never expires an invoice that is already Processing', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ expiresIn: 600 });
    harness.pay(invoice, AMOUNT);

    harness.clock += 10_000;

    expect(harness.invoices.expireDue()).toBe(0);
    expect(statusOf(harness, invoice)).toEqual(['Processing', 'None']);
  });
});

describe('InvoiceService.cancel', () => {
  it('marks a New invoice Invalid with InvoiceInvalid manuallyMarked, once', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();

    const cancelled = harness.invoices.cancel(harness.merchantId, invoice.id);
    const again = harness.invoices.cancel(harness.merchantId, invoice.id);

    expect(cancelled.status).toBe('Invalid');
    expect(again.status).toBe('Invalid');
    expect(harness.events(invoice)).toEqual(['InvoiceCreated', 'InvoiceInvalid']);
    expect(harness.lastBody(invoice, 'InvoiceInvalid')).toMatchObject({ manuallyMarked: true });
  });

  it('cancels an Expired invoice', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create({ expiresIn: 60 });
    harness.clock += 60;
    harness.invoices.expireDue();

    expect(harness.invoices.cancel(harness.merchantId, invoice.id).status).toBe('Invalid');
  });

  it('refuses a Settled invoice with ConflictError invoice_not_cancellable, changing nothing', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    harness.pay(invoice, AMOUNT, DEFAULT_CONFIRMATIONS);
    const before = harness.count('webhook_deliveries');

    const attempt = () => harness.invoices.cancel(harness.merchantId, invoice.id);

    expect(attempt).toThrow(ConflictError);
    expect(attempt).toThrow(expect.objectContaining({ code: 'invoice_not_cancellable' }));
    expect(statusOf(harness, invoice)).toEqual(['Settled', 'None']);
    expect(harness.count('webhook_deliveries')).toBe(before);
  });

  it('refuses a Processing invoice with ConflictError', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    harness.pay(invoice, AMOUNT);

    expect(() => harness.invoices.cancel(harness.merchantId, invoice.id)).toThrow(ConflictError);
    expect(statusOf(harness, invoice)).toEqual(['Processing', 'None']);
  });

  it('still credits and lists a payment that arrives after the cancel', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    harness.invoices.cancel(harness.merchantId, invoice.id);

    harness.pay(invoice, AMOUNT, DEFAULT_CONFIRMATIONS);

    expect(harness.current(invoice).status).toBe('Invalid');
    expect(harness.invoices.payments(invoice)).toEqual([
      expect.objectContaining({ amount: AMOUNT, state: 'confirmed' }),
    ]);
  });
});

describe('InvoiceService and reorgs', () => {
  it('turns a Processing invoice Invalid with InvoiceInvalid when its payment is orphaned', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    harness.pay(invoice, AMOUNT);
    const paidAt = harness.height;

    harness.reorg(paidAt - 1);

    expect(statusOf(harness, invoice)).toEqual(['Invalid', 'None']);
    expect(harness.events(invoice)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
      'InvoiceInvalid',
    ]);
    expect(harness.lastBody(invoice, 'InvoiceInvalid')).toMatchObject({ manuallyMarked: false });
    expect(harness.invoices.payments(invoice).map((p) => p.state)).toEqual(['orphaned']);
  });

  it('lets a partly paid New invoice fall back to None when its payment is orphaned', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    harness.pay(invoice, AMOUNT / 2n);

    harness.reorg(harness.height - 1);

    expect(statusOf(harness, invoice)).toEqual(['New', 'None']);
    expect(harness.events(invoice)).toEqual(['InvoiceCreated', 'InvoiceReceivedPayment']);
  });
});

describe('InvoiceService inside the scan transaction', () => {
  it('leaves no payment, status or outbox row when the scan transaction fails', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    const transfer = harness.transfer(invoice.payment_id, AMOUNT);
    harness.height = transfer.height;
    const before = {
      deliveries: harness.count('webhook_deliveries'),
      cursor: harness.payments.cursor(),
    };

    harness.failNextScan = true;
    expect(() => harness.scan([transfer], harness.height)).toThrow(/scan failed/);

    expect(statusOf(harness, invoice)).toEqual(['New', 'None']);
    expect(harness.count('payments')).toBe(0);
    expect(harness.count('webhook_deliveries')).toBe(before.deliveries);
    expect(harness.payments.cursor()).toBe(before.cursor);

    harness.scan([transfer], harness.height);
    expect(statusOf(harness, invoice)).toEqual(['Processing', 'None']);
    expect(harness.events(invoice)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
    ]);
  });

  it('rolls back the invoice payment in a scan that breaks a CHECK constraint', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    const good = harness.transfer(invoice.payment_id, AMOUNT);
    const broken = { ...harness.transfer(invoice.payment_id, 0n), txid: randomTxid() };
    harness.height = good.height;

    expect(() => harness.scan([good, broken], harness.height)).toThrow(/CHECK constraint/);

    expect(statusOf(harness, invoice)).toEqual(['New', 'None']);
    expect(harness.count('payments')).toBe(0);
    expect(harness.events(invoice)).toEqual(['InvoiceCreated']);
  });

  it('never counts an invoice payment as an anonymous ticket payment', async () => {
    const harness = new InvoiceHarness();
    const invoice = await harness.create();
    const ticketPid = randomBytes(8).toString('hex');
    harness.pay(invoice, AMOUNT);
    harness.payPid(ticketPid, 7_000n);
    harness.mine(DEFAULT_CONFIRMATIONS);

    const invoiceTag = harness.secrets.pidTag(Buffer.from(invoice.payment_id, 'hex'));
    const ticketTag = harness.secrets.pidTag(Buffer.from(ticketPid, 'hex'));
    expect(statusOf(harness, invoice)).toEqual(['Settled', 'None']);
    expect(harness.ticketStore.balance(invoiceTag)).toBe(0n);
    expect(harness.payments.paymentsFor(invoiceTag)).toEqual([]);
    expect([...harness.payments.allTags()]).toEqual([ticketTag]);
    expect(harness.ticketStore.balance(ticketTag)).toBe(7_000n);
  });

  it("keeps each invoice's events apart when one scan pays several invoices", async () => {
    const harness = new InvoiceHarness();
    const a = await harness.create();
    const b = await harness.create();
    const transfers = [
      harness.transfer(a.payment_id, AMOUNT),
      harness.transfer(b.payment_id, AMOUNT / 2n),
    ];
    harness.height = transfers[0]!.height;

    harness.scan(transfers, harness.height);

    expect(harness.events(a)).toEqual([
      'InvoiceCreated',
      'InvoiceReceivedPayment',
      'InvoiceProcessing',
    ]);
    expect(harness.events(b)).toEqual(['InvoiceCreated', 'InvoiceReceivedPayment']);
    expect(statusOf(harness, b)).toEqual(['New', 'PaidPartial']);
  });
});
