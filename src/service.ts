import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { type Config, parseListen } from './config/config.js';
import { ConfigError } from './errors.js';
import { registerCheckoutRoute } from './http/checkout-route.js';
import { createInternalApp } from './http/internal-app.js';
import { Listener } from './http/listener.js';
import { registerMerchantAdminRoutes } from './http/merchant-admin-routes.js';
import { registerMerchantRoutes } from './http/merchant-routes.js';
import { createPublicApp } from './http/public-app.js';
import { registerWebhookAdminRoutes } from './http/webhook-admin-routes.js';
import { InvoiceService } from './invoices/invoice-service.js';
import { InvoiceStore } from './invoices/invoice-store.js';
import { MerchantStore } from './merchants/merchant-store.js';
import { SignatureVerifier } from './merchants/signature-verifier.js';
import { Metrics } from './metrics.js';
import { decodeAddress } from './monero/address.js';
import { Monitor } from './monitor/monitor.js';
import { pooledParser } from './monitor/pooled-parser.js';
import { WalletRpcClient } from './monitor/wallet-rpc-client.js';
import { type Db, openDatabase, WAL_CHECKPOINT_PAGES } from './storage/database.js';
import { PaymentStore } from './storage/payment-store.js';
import { TicketStore } from './storage/ticket-store.js';
import { WalCheckpointer } from './storage/wal-checkpointer.js';
import { BloomFilter } from './tickets/bloom-filter.js';
import { loadSecret } from './tickets/secrets.js';
import { TicketService } from './tickets/ticket-service.js';
import { Outbox } from './webhooks/outbox.js';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher.js';
import { WorkerPool } from './work/worker-pool.js';

export const DATABASE_FILE = 'stronghold.db';
const EXPIRY_SWEEP_MS = 5_000;
/** How often the checkpointer looks at the WAL's size. */
const CHECKPOINT_LOOK_MS = 250;
/**
 * WAL pages at which the writer checkpoints on its own, should the worker
 * pool not get to it: ten times the checkpointer's threshold.
 */
const BACKSTOP_CHECKPOINT_PAGES = 10 * WAL_CHECKPOINT_PAGES;

type Parts = {
  db: Db;
  logger: Logger;
  metrics: Metrics;
  monitor: Monitor;
  pool: WorkerPool;
  checkpointer: WalCheckpointer;
  dispatcher: WebhookDispatcher;
  expiryTimer: NodeJS.Timeout;
  publicListener: Listener;
  internalListener: Listener;
};

/**
 * The whole service: storage, the worker pool, the monitor, webhooks and
 * both listeners, started in that order and closed in the reverse one.
 */
export class Service {
  readonly publicListener: Listener;
  readonly internalListener: Listener;
  readonly monitor: Monitor;
  readonly metrics: Metrics;
  readonly #parts: Parts;
  #closing: Promise<void> | undefined;

  private constructor(parts: Parts) {
    this.#parts = parts;
    this.metrics = parts.metrics;
    this.monitor = parts.monitor;
    this.publicListener = parts.publicListener;
    this.internalListener = parts.internalListener;
  }

  static async start(config: Config, logger: Logger): Promise<Service> {
    // Storage: the data dir, the database and the secret beside it.
    mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
    chmodSync(config.data_dir, 0o700);
    const databaseFile = join(config.data_dir, DATABASE_FILE);
    const db = openDatabase(databaseFile, { autoCheckpointPages: BACKSTOP_CHECKPOINT_PAGES });
    const secrets = loadSecret(config.secret_file);
    const merchants = new MerchantStore(db);
    const invoiceStore = new InvoiceStore(db);
    const outbox = new Outbox(db);
    const ticketStore = new TicketStore(db);
    const metrics = new Metrics();

    // Off the main thread: signature checks, digests, wallet answers, WAL checkpoints.
    const pool = new WorkerPool({ threads: config.workers });
    const checkpointer = new WalCheckpointer({
      file: databaseFile,
      checkpoint: (file) => pool.checkpointWal({ file }),
      thresholdBytes: WAL_CHECKPOINT_PAGES * (db.pragma('page_size', { simple: true }) as number),
      intervalMs: CHECKPOINT_LOOK_MS,
      logger: logger.child({ component: 'storage' }),
    });
    const verifier = new SignatureVerifier({
      pool,
      windowSeconds: config.signature_window_s,
      lookupKey: (keyId) => merchants.lookupKey(keyId),
    });
    const dispatcher = new WebhookDispatcher({
      db,
      logger: logger.child({ component: 'webhooks' }),
      ...(config.outbound_proxy ? { proxy: config.outbound_proxy } : {}),
      torOnly: config.tor_only,
      timeoutMs: config.webhook_timeout_ms,
      retrySchedule: { firstDelayMs: config.webhook_retry_first_delay_ms },
    });

    // Payments: tickets and invoices share one scan and one transaction.
    const rpc = new WalletRpcClient({ url: config.wallet_rpc_url, timeoutMs: config.wallet_rpc_timeout_ms });
    let primaryAddress = config.primary_address ? checkPrimaryAddress(config.primary_address, config) : undefined;
    let monitor: Monitor | undefined;
    const invoices = new InvoiceService({
      db,
      store: invoiceStore,
      outbox,
      secrets,
      digest: (text) => pool.digestText(text, 'sha256'),
      primaryAddress: () => primaryAddress,
      defaultConfirmations: config.min_confirmations,
      defaultExpirySeconds: config.invoice_expiry_s,
      onEventsCommitted: () => dispatcher.kick(),
    });
    const ticketTerms = { requiredConfirmations: config.min_confirmations, invoiceSeq: null };
    const payments = new PaymentStore(db, {
      dustFloor: config.min_payment_atomic,
      termsOf: (tag) => {
        const invoice = invoiceStore.byTag(tag);
        if (invoice === undefined) return ticketTerms;
        return { requiredConfirmations: invoice.confirmations, invoiceSeq: invoice.seq };
      },
      onApplied: (events, scan) => invoices.onPaymentEvents(events, scan.now),
    });
    const bloom = loadBloomFilter(config, payments, logger);
    const tickets = new TicketService({
      payments,
      tickets: ticketStore,
      secrets,
      bloom,
      cacheMaxEntries: config.cache_max_entries,
      walletHeight: () => monitor?.walletHeight ?? 0,
      counters: metrics.ticketCounters(),
    });
    monitor = new Monitor({
      rpc,
      payments,
      parse: pooledParser(pool, secrets.pidTagKey()),
      logger: logger.child({ component: 'monitor' }),
      startHeight: config.start_height,
      reorgWindow: Math.max(config.min_confirmations, 10) + 2,
      pollIntervalMs: config.poll_interval_ms,
      maxBackoffMs: config.max_backoff_ms,
      counters: metrics.monitorCounters(),
      onEvents: (events) => {
        tickets.onPaymentEvents(events);
        if (events.some((e) => e.payment.invoice_seq !== null)) dispatcher.kick();
        if (primaryAddress === undefined) {
          rpc.getAddress().then(
            (address) => (primaryAddress = checkPrimaryAddress(address, config)),
            (err: unknown) => logger.error({ err }, 'the wallet address cannot be used'),
          );
        }
      },
    });
    const watched = monitor;
    metrics.lagMs = () => watched.lagMs();

    // The listeners: customer and merchant routes public, administration internal.
    const http = { metrics, logger: logger.child({ component: 'http' }), bodyLimitBytes: config.body_limit_bytes };
    const publicApp = createPublicApp({
      ...http,
      tickets,
      info: () => ({
        network: config.network,
        primaryAddress,
        minPaymentAtomic: config.min_payment_atomic,
        minConfirmations: config.min_confirmations,
      }),
    });
    registerMerchantRoutes(publicApp, {
      invoices,
      verifier,
      walletHeight: () => watched.walletHeight,
      inFlight: config.merchant_requests_in_flight,
    });
    registerCheckoutRoute(publicApp, invoices);

    const internalApp = createInternalApp({
      ...http,
      tickets,
      readiness: () => {
        const checks = {
          database: db.open,
          wallet_rpc: watched.reachable,
          monitor_lag: watched.lagMs() <= config.ready_max_lag_ms,
        };
        return { ready: Object.values(checks).every(Boolean), checks };
      },
    });
    registerMerchantAdminRoutes(internalApp, merchants);
    registerWebhookAdminRoutes(internalApp, outbox, dispatcher);

    const listen = {
      maxConnections: config.max_connections,
      headersTimeoutMs: config.headers_timeout_ms,
      requestTimeoutMs: config.request_timeout_ms,
    };
    const publicListener = await Listener.open({
      ...listen,
      address: parseListen(config.public_listen),
      fetch: publicApp.fetch,
    });
    const internalListener = await Listener.open({
      ...listen,
      address: parseListen(config.internal_listen),
      fetch: internalApp.fetch,
    });
    logger.info({ public: publicListener.url, internal: internalListener.url }, 'listening');

    // Background work: the monitor, webhook delivery, invoice expiry.
    checkpointer.start();
    monitor.start();
    dispatcher.start();
    const expiryTimer = setInterval(() => {
      try {
        invoices.expireDue();
      } catch (err) {
        logger.error({ err }, 'invoice expiry sweep failed');
      }
    }, EXPIRY_SWEEP_MS);

    return new Service({
      db,
      logger,
      metrics,
      monitor,
      pool,
      checkpointer,
      dispatcher,
      expiryTimer,
      publicListener,
      internalListener,
    });
  }

  /**
   * Graceful stop: the listeners stop accepting and drain, the monitor stops
   * between scans, webhook attempts in flight finish, the worker pool
   * drains, and the database checkpoints and closes.
   */
  close(graceMs = 5_000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    const parts = this.#parts;
    await Promise.all([parts.publicListener.close(graceMs), parts.internalListener.close(graceMs)]);
    clearInterval(parts.expiryTimer);
    await parts.monitor.close();
    await parts.dispatcher.close();
    await parts.checkpointer.close();
    await parts.pool.close();
    parts.db.pragma('wal_checkpoint(TRUNCATE)');
    parts.db.close();
    parts.logger.info('stopped');
  }
}

function loadBloomFilter(config: Config, payments: PaymentStore, logger: Logger): BloomFilter {
  const bloom = BloomFilter.create(config.bloom_expected_items, config.bloom_false_positive_rate);
  let known = 0;
  for (const tag of payments.allTags()) {
    bloom.add(tag);
    known++;
  }
  logger.info({ known, bits: bloom.bits, hashes: bloom.hashes }, 'payment id filter loaded');
  return bloom;
}

/** The wallet's primary address must be a standard address of the configured network. */
function checkPrimaryAddress(address: string, config: Config): string {
  let decoded;
  try {
    decoded = decodeAddress(address);
  } catch {
    throw new ConfigError('primary_address', 'setting "primary_address" is not a valid Monero address');
  }
  if (decoded.kind !== 'standard' || decoded.network !== config.network) {
    throw new ConfigError(
      'primary_address',
      `the wallet's primary address must be a standard ${config.network} address (setting "network")`,
    );
  }
  return address;
}
