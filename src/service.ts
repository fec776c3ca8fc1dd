import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { type Config, parseListen } from './config/config.js';
import { createInternalApp } from './http/internal-app.js';
import { Listener } from './http/listener.js';
import { createPublicApp } from './http/public-app.js';
import { Metrics } from './metrics.js';
import { Monitor } from './monitor/monitor.js';
import { WalletRpcClient } from './monitor/wallet-rpc-client.js';
import { type Db, openDatabase } from './storage/database.js';
import { type PaymentEvent, PaymentStore } from './storage/payment-store.js';
import { TicketStore } from './storage/ticket-store.js';
import { BloomFilter } from './tickets/bloom-filter.js';
import { loadSecret } from './tickets/secrets.js';
import { TicketService } from './tickets/ticket-service.js';

export const DATABASE_FILE = 'stronghold.db';

/**
 * The whole service: storage, the monitor and both listeners, started in
 * that order and closed in the reverse one.
 */
export class Service {
  readonly publicListener: Listener;
  readonly internalListener: Listener;
  readonly monitor: Monitor;
  readonly metrics: Metrics;
  readonly #db: Db;
  readonly #logger: Logger;

  private constructor(parts: {
    db: Db;
    logger: Logger;
    metrics: Metrics;
    monitor: Monitor;
    publicListener: Listener;
    internalListener: Listener;
  }) {
    this.#db = parts.db;
    this.#logger = parts.logger;
    this.metrics = parts.metrics;
    this.monitor = parts.monitor;
    this.publicListener = parts.publicListener;
    this.internalListener = parts.internalListener;
  }

  static async start(config: Config, logger: Logger): Promise<Service> {
    // Storage: the data dir, the database and the secret beside it.
    mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
    const db = openDatabase(join(config.data_dir, DATABASE_FILE));
    const secrets = loadSecret(config.secret_file);
    const payments = new PaymentStore(db, {
      dustFloor: config.min_payment_atomic,
      requiredConfirmations: () => config.min_confirmations,
    });
    const ticketStore = new TicketStore(db);

    // The front door: every known payment id in the Bloom filter.
    const bloom = BloomFilter.create(config.bloom_expected_items, config.bloom_false_positive_rate);
    let known = 0;
    for (const tag of payments.allTags()) {
      bloom.add(tag);
      known++;
    }
    logger.info({ known, bits: bloom.bits, hashes: bloom.hashes }, 'payment id filter loaded');

    // The monitor, feeding the filter and caches as payments land.
    const metrics = new Metrics();
    const rpc = new WalletRpcClient({ url: config.wallet_rpc_url, timeoutMs: config.wallet_rpc_timeout_ms });
    let primaryAddress = config.primary_address || undefined;
    let monitor: Monitor;
    const tickets = new TicketService({
      payments,
      tickets: ticketStore,
      secrets,
      bloom,
      cacheMaxEntries: config.cache_max_entries,
      walletHeight: () => monitor.walletHeight,
      counters: metrics.ticketCounters(),
    });
    monitor = new Monitor({
      rpc,
      payments,
      pidTag: (pid) => secrets.pidTag(pid),
      logger: logger.child({ component: 'monitor' }),
      startHeight: config.start_height,
      reorgWindow: Math.max(config.min_confirmations, 10) + 2,
      pollIntervalMs: config.poll_interval_ms,
      maxBackoffMs: config.max_backoff_ms,
      counters: metrics.monitorCounters(),
      onEvents: (events: PaymentEvent[]) => {
        tickets.onPaymentEvents(events);
        if (primaryAddress === undefined) {
          rpc.getAddress().then((address) => (primaryAddress = address), () => undefined);
        }
      },
    });
    metrics.lagMs = () => monitor.lagMs();

    // The listeners: customer routes public, administration internal.
    const http = {
      metrics,
      logger: logger.child({ component: 'http' }),
      bodyLimitBytes: config.body_limit_bytes,
    };
    const listen = {
      maxConnections: config.max_connections,
      headersTimeoutMs: config.headers_timeout_ms,
      requestTimeoutMs: config.request_timeout_ms,
    };
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
    const internalApp = createInternalApp({
      ...http,
      tickets,
      readiness: () => {
        const checks = {
          database: db.open,
          wallet_rpc: monitor.reachable,
          monitor_lag: monitor.lagMs() <= config.ready_max_lag_ms,
        };
        return { ready: Object.values(checks).every(Boolean), checks };
      },
    });
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
    logger.info(
      { public: publicListener.url, internal: internalListener.url },
      'listening',
    );

    monitor.start();
    return new Service({ db, logger, metrics, monitor, publicListener, internalListener });
  }

  /** Graceful stop: listeners drain, the monitor stops between polls, the database checkpoints. */
  async close(graceMs = 5_000): Promise<void> {
    await Promise.all([this.publicListener.close(graceMs), this.internalListener.close(graceMs)]);
    await this.monitor.close();
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    this.#db.close();
    this.#logger.info('stopped');
  }
}
