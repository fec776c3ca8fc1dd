import { LRUCache } from 'lru-cache';

import { InvalidInputError, NotFoundError } from '../errors.js';
import { GroupCommit } from '../storage/group-commit.js';
import type { PaymentEvent, PaymentStore } from '../storage/payment-store.js';
import { confirmationsOf } from '../storage/payment-store.js';
import type { ClaimRequest, TicketRow, TicketStore } from '../storage/ticket-store.js';
import type { BloomFilter } from './bloom-filter.js';
import { type Secrets, tagOfToken, tokenHash } from './secrets.js';

export type RedeemResult =
  | { status: 'success' | 'already_claimed'; token: string; balance: bigint }
  | { status: 'pending'; confirmations: number; required: number };

export type TokenStatus = {
  status: 'active' | 'revoked';
  balance: bigint;
  issuedAt: number;
  revokedAt: number | null;
  abuseScore: number;
};

/** What redeem and introspection count, for metrics. */
export type TicketCounters = {
  bloomMiss(): void;
  bloomFalsePositive(): void;
  cacheHit(kind: 'redeem' | 'token'): void;
};

export type TicketServiceOptions = {
  payments: PaymentStore;
  tickets: TicketStore;
  secrets: Secrets;
  bloom: BloomFilter;
  cacheMaxEntries: number;
  /** The wallet's chain height as last seen by the monitor. */
  walletHeight(): number;
  counters?: TicketCounters;
  now?: () => number;
};

const PID_PATTERN = /^[0-9a-fA-F]{16}$/;
const TOKEN_PATTERN = /^[0-9a-f]{64}$/;
const NO_COUNTERS: TicketCounters = { bloomMiss() {}, bloomFalsePositive() {}, cacheHit() {} };

/**
 * The answers to ids and tokens nobody paid for or was issued. These come
 * as fast as a client cares to send them, and an error is immutable, so one
 * instance each is thrown rather than one built per request.
 */
const UNKNOWN_PID = new NotFoundError('no payment is known for this payment id');
const UNKNOWN_TOKEN = new NotFoundError('unknown token');

/**
 * Anonymous tickets: a payment id with confirmed funds is exchanged, once,
 * for a service token. Unknown ids are answered from the Bloom filter, hot
 * ids and tokens from caches; only the rest reach SQLite.
 */
export class TicketService {
  readonly #options: TicketServiceOptions;
  readonly #counters: TicketCounters;
  readonly #now: () => number;
  readonly #claimed: LRUCache<string, { token: string; balance: bigint }>;
  readonly #statuses: LRUCache<string, { status: TokenStatus; tagKey: string }>;
  /**
   * The cached status of each payment id's token, by the id's tag: a scan
   * that changes an id's payments drops the status without asking SQLite
   * which token the id was redeemed for (a lookup per confirmed payment,
   * measured at a tenth of an ingest's main-thread time).
   */
  readonly #statusKeyOfTag = new Map<string, string>();
  readonly #claims: GroupCommit<ClaimRequest, boolean>;
  /** Counts cache invalidations, so a claim in flight can tell it missed one. */
  #forgotten = 0;

  constructor(options: TicketServiceOptions) {
    this.#options = options;
    this.#counters = options.counters ?? NO_COUNTERS;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    const max = Math.max(1, options.cacheMaxEntries);
    this.#claimed = new LRUCache({ max });
    this.#statuses = new LRUCache({
      max,
      dispose: ({ tagKey }, key) => {
        if (this.#statusKeyOfTag.get(tagKey) === key) this.#statusKeyOfTag.delete(tagKey);
      },
    });
    this.#claims = new GroupCommit((requests) => options.tickets.claimAll(requests));
  }

  /**
   * Answers at once from the Bloom filter, the cache or the stored
   * payments; only a claim, which waits for its group commit, answers with
   * a promise. Refusals are thrown, synchronously.
   */
  redeem(pidHex: unknown): RedeemResult | Promise<RedeemResult> {
    const pid = parsePid(pidHex);
    const tag = this.#options.secrets.pidTag(pid);
    if (!this.#options.bloom.has(tag)) {
      this.#counters.bloomMiss();
      throw UNKNOWN_PID;
    }

    const key = tag.toString('latin1');
    const cached = this.#claimed.get(key);
    if (cached) {
      this.#counters.cacheHit('redeem');
      return { status: 'already_claimed', token: cached.token, balance: cached.balance };
    }
    return this.#redeemStored(pid, tag, key);
  }

  #redeemStored(pid: Buffer, tag: Buffer, key: string): RedeemResult | Promise<RedeemResult> {
    const { payments, secrets } = this.#options;
    const rows = payments.paymentsFor(tag);
    const balance = rows.reduce((sum, p) => (p.state === 'confirmed' ? sum + p.amount : sum), 0n);

    if (balance === 0n) {
      const pending = rows.filter((p) => p.state === 'pending');
      if (pending.length === 0) return this.#nothingToRedeem(rows.length);
      const height = this.#options.walletHeight();
      const best = pending.reduce((a, b) => (confirmationsOf(a.height, height) >= confirmationsOf(b.height, height) ? a : b));
      return {
        status: 'pending',
        confirmations: confirmationsOf(best.height, height),
        required: best.required_confirmations,
      };
    }

    const token = secrets.token(pid, tag);
    const forgotten = this.#forgotten;
    return this.#claims
      .submit({ pidTag: tag, tokenHash: tokenHash(token), now: this.#now() })
      .then((claimed) => {
        // A scan that changed this id's payments while the claim waited
        // has dropped it from the cache; the balance read here is older.
        if (this.#forgotten === forgotten) this.#claimed.set(key, { token, balance });
        return { status: claimed ? 'success' : 'already_claimed', token, balance };
      });
  }

  #nothingToRedeem(rows: number): never {
    if (rows === 0) this.#counters.bloomFalsePositive();
    throw new NotFoundError('no confirmed or pending payment is known for this payment id');
  }

  status(token: unknown): TokenStatus {
    const { tag, hash } = parseToken(token);
    const key = hash.toString('latin1');
    const cached = this.#statuses.get(key);
    if (cached) {
      this.#counters.cacheHit('token');
      return cached.status;
    }

    const ticket = this.#options.tickets.byToken(tag, hash);
    if (!ticket) throw UNKNOWN_TOKEN;
    const status = this.#toStatus(ticket);
    const tagKey = ticket.pid_tag.toString('latin1');
    this.#statuses.set(key, { status, tagKey });
    this.#statusKeyOfTag.set(tagKey, key);
    return status;
  }

  revoke(token: unknown, reason: string, abuseScore: number): TokenStatus {
    const { tag, hash } = parseToken(token);
    const ticket = this.#options.tickets.revoke(tag, hash, reason, abuseScore, this.#now());
    if (!ticket) throw new NotFoundError('unknown token');
    this.#statuses.delete(hash.toString('latin1'));
    return this.#toStatus(ticket);
  }

  /** Follows what the monitor recorded: new ids join the filter, balances change. */
  onPaymentEvents(events: readonly PaymentEvent[]): void {
    for (const { kind, payment } of events) {
      if (payment.invoice_seq !== null) continue;
      if (kind === 'seen' || kind === 'ignored') this.#options.bloom.add(payment.pid_tag);
      if (kind === 'confirmed' || kind === 'orphaned') this.#forget(payment.pid_tag);
    }
  }

  #forget(tag: Buffer): void {
    this.#forgotten += 1;
    const tagKey = tag.toString('latin1');
    this.#claimed.delete(tagKey);
    const statusKey = this.#statusKeyOfTag.get(tagKey);
    if (statusKey !== undefined) this.#statuses.delete(statusKey);
  }

  #toStatus(ticket: TicketRow): TokenStatus {
    return {
      status: ticket.revoked_at === null ? 'active' : 'revoked',
      balance: this.#options.tickets.balance(ticket.pid_tag),
      issuedAt: ticket.issued_at,
      revokedAt: ticket.revoked_at,
      abuseScore: ticket.abuse_score,
    };
  }
}

export function parsePid(value: unknown): Buffer {
  if (typeof value !== 'string' || !PID_PATTERN.test(value)) {
    throw new InvalidInputError('pid must be a string of 16 hex digits', 'invalid_pid');
  }
  return Buffer.from(value, 'hex');
}

function parseToken(value: unknown): { tag: Buffer; hash: Buffer } {
  if (typeof value !== 'string' || !TOKEN_PATTERN.test(value)) {
    throw new InvalidInputError('token must be 64 lowercase hex digits', 'invalid_token');
  }
  return { tag: tagOfToken(value), hash: tokenHash(value) };
}
