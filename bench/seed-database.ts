import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { DATABASE_FILE } from '../src/service.js';
import { type Db, openDatabase } from '../src/storage/database.js';
import { PaymentStore, type Transfer } from '../src/storage/payment-store.js';
import { TicketStore } from '../src/storage/ticket-store.js';
import { loadSecret, type Secrets, tokenHash } from '../src/tickets/secrets.js';

/** A wallet height far above every seeded payment, so all of them are confirmed. */
export const SEED_WALLET_HEIGHT = 3_000_000;
const FIRST_HEIGHT = 1_000_000;
const PAYMENTS_PER_BLOCK = 100;
const BATCH = 50_000;
const AMOUNT = 1_000_000_000_000n;
const SEED_NOW = 1_700_000_000;

/**
 * Fills a service's data dir before the service starts, through the same
 * stores the service uses: payments go in as confirmed scans applied by
 * PaymentStore, claims through TicketStore, and the secret comes from the
 * secret file the service will load. Open it only while the service is
 * stopped: SQLite allows one writer.
 */
export class SeedDatabase {
  readonly secrets: Secrets;
  readonly #db: Db;
  readonly #payments: PaymentStore;
  readonly #tickets: TicketStore;
  #seeded = 0;

  constructor(dataDir: string) {
    this.secrets = loadSecret(join(dataDir, 'secret.key'));
    this.#db = openDatabase(join(dataDir, DATABASE_FILE));
    // Seeding only: a larger page cache keeps the random-keyed indexes of
    // millions of rows in memory while they are built.
    this.#db.pragma('cache_size = -1000000');
    this.#payments = new PaymentStore(this.#db, {
      dustFloor: 1n,
      termsOf: () => ({ requiredConfirmations: 10, invoiceSeq: null }),
    });
    this.#tickets = new TicketStore(this.#db);
    this.#seeded = this.#db.prepare('SELECT count(*) FROM payments').pluck().get() as number;
  }

  /** Payments stored so far. */
  get payments(): number {
    return this.#seeded;
  }

  /**
   * Stores `count` confirmed payments, each to a new random payment id, and
   * returns the first `keep` ids as 16 hex digits.
   */
  addPayments(count: number, keep = 0): string[] {
    const kept: string[] = [];
    for (let done = 0; done < count; ) {
      const size = Math.min(BATCH, count - done);
      // One call to the CSPRNG per batch: a call per id cost more than the insert.
      const random = randomBytes(size * 40);
      const transfers: Transfer[] = [];
      for (let i = 0; i < size; i++) {
        const pid = random.subarray(i * 40, i * 40 + 8);
        if (kept.length < keep) kept.push(pid.toString('hex'));
        const txid = random.toString('hex', i * 40 + 8, i * 40 + 40);
        transfers.push(this.#transfer(pid, txid, this.#seeded + done + i));
      }
      this.#payments.apply({
        transfers,
        walletHeight: SEED_WALLET_HEIGHT,
        from: SEED_WALLET_HEIGHT,
        now: SEED_NOW,
      });
      done += size;
    }
    this.#seeded += count;
    return kept;
  }

  /** Redeems each id as the service would, and returns the service tokens. */
  claim(pids: readonly string[]): string[] {
    return this.#db.transaction(() =>
      pids.map((hex) => {
        const pid = Buffer.from(hex, 'hex');
        const token = this.secrets.token(pid);
        this.#tickets.claim(this.secrets.pidTag(pid), tokenHash(token), SEED_NOW);
        return token;
      }),
    )();
  }

  close(): void {
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    this.#db.close();
  }

  #transfer(pid: Buffer, txid: string, serial: number): Transfer {
    return {
      txid,
      major: 0,
      minor: serial % 1_000,
      pidTag: this.secrets.pidTag(pid),
      amount: AMOUNT,
      height: FIRST_HEIGHT + Math.floor(serial / PAYMENTS_PER_BLOCK),
      unlockTime: 0n,
      doubleSpendSeen: false,
    };
  }
}
