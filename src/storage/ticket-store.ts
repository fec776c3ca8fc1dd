import type { Db } from './database.js';

export type TicketRow = {
  id: number;
  pid_tag: Buffer;
  token_hash: Buffer;
  issued_at: number;
  revoked_at: number | null;
  revoke_reason: string | null;
  abuse_score: number;
};

/** One claim of a payment id: its tag, its token's hash, and when. */
export type ClaimRequest = { pidTag: Buffer; tokenHash: Buffer; now: number };

/** Redeemed payment ids and the hashes of their tokens. */
export class TicketStore {
  readonly #claim;
  readonly #claimAll;
  readonly #byTag;
  readonly #byToken;
  readonly #revoke;
  readonly #balance;

  constructor(db: Db) {
    this.#claim = db.prepare(
      `INSERT INTO tickets (pid_tag, token_hash, issued_at) VALUES (?, ?, ?)
       ON CONFLICT (pid_tag) DO NOTHING RETURNING *`,
    );
    const claimOne = db.prepare(
      `INSERT INTO tickets (pid_tag, token_hash, issued_at) VALUES (?, ?, ?)
       ON CONFLICT (pid_tag) DO NOTHING RETURNING id`,
    );
    this.#claimAll = db.transaction((requests: readonly ClaimRequest[]) =>
      requests.map((r) => claimOne.get(r.pidTag, r.tokenHash, r.now) !== undefined),
    );
    this.#byTag = db.prepare('SELECT * FROM tickets WHERE pid_tag = ?');
    this.#byToken = db.prepare('SELECT * FROM tickets WHERE pid_tag = ? AND token_hash = ?');
    this.#revoke = db.prepare(
      `UPDATE tickets SET revoked_at = coalesce(revoked_at, @now), revoke_reason = @reason,
         abuse_score = @score WHERE pid_tag = @pidTag AND token_hash = @tokenHash RETURNING *`,
    );
    this.#balance = db
      .prepare(
        `SELECT coalesce(sum(amount), 0) FROM payments
         WHERE pid_tag = ? AND state = 'confirmed' AND invoice_seq IS NULL`,
      )
      .pluck()
      .safeIntegers(true);
  }

  /**
   * Claims a payment id. Exactly one call per tag ever returns `claimed`;
   * SQLite's unique key decides, so this holds across restarts too.
   */
  claim(pidTag: Buffer, tokenHash: Buffer, now: number): { claimed: boolean; ticket: TicketRow } {
    const inserted = this.#claim.get(pidTag, tokenHash, now) as TicketRow | undefined;
    if (inserted) return { claimed: true, ticket: inserted };
    return { claimed: false, ticket: this.#byTag.get(pidTag) as TicketRow };
  }

  /**
   * Claims several payment ids in one transaction: one answer per request,
   * in order, true where this call made the claim. Of two requests for one
   * tag, in the same call or not, only the first ever gets true.
   */
  claimAll(requests: readonly ClaimRequest[]): boolean[] {
    return this.#claimAll.immediate(requests);
  }

  byTag(pidTag: Buffer): TicketRow | undefined {
    return this.#byTag.get(pidTag) as TicketRow | undefined;
  }

  /** The ticket of a token: found by the tag the token starts with, matched by the token's hash. */
  byToken(pidTag: Buffer, tokenHash: Buffer): TicketRow | undefined {
    return this.#byToken.get(pidTag, tokenHash) as TicketRow | undefined;
  }

  revoke(pidTag: Buffer, tokenHash: Buffer, reason: string, score: number, now: number): TicketRow | undefined {
    return this.#revoke.get({ pidTag, tokenHash, reason, score, now }) as TicketRow | undefined;
  }

  /** Confirmed funds paid to a payment id, before and after its redeem. */
  balance(pidTag: Buffer): bigint {
    return this.#balance.get(pidTag) as bigint;
  }
}
