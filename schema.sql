-- Stronghold schema. Each "-- migration: N" section is applied once, in
-- order, inside one transaction, and recorded in PRAGMA user_version.
-- Money columns hold piconero as 64-bit integers.

-- migration: 1
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- One row per incoming transfer the wallet reported. A transaction that
-- pays several of our subaddresses appears once per subaddress, so the
-- key is the txid together with the subaddress it paid.
-- pid_tag is a keyed hash of the payment id: the id itself is a bearer
-- secret until redeemed and is never stored.
CREATE TABLE payments (
  id                     INTEGER PRIMARY KEY,
  txid                   TEXT    NOT NULL,
  subaddr_major          INTEGER NOT NULL,
  subaddr_minor          INTEGER NOT NULL,
  pid_tag                BLOB    NOT NULL,
  amount                 INTEGER NOT NULL CHECK (amount > 0),
  height                 INTEGER NOT NULL,
  state                  TEXT    NOT NULL
    CHECK (state IN ('pending', 'confirmed', 'dust', 'locked', 'orphaned')),
  required_confirmations INTEGER NOT NULL,
  first_seen_at          INTEGER NOT NULL,
  confirmed_at           INTEGER,
  orphaned_at            INTEGER,
  UNIQUE (txid, subaddr_major, subaddr_minor)
) STRICT;

CREATE INDEX payments_by_pid ON payments (pid_tag, state);
CREATE INDEX payments_pending ON payments (height) WHERE state = 'pending';

-- A redeemed payment id. The token is derived from the payment id with a
-- secret kept outside the database; only its SHA-256 is stored here.
CREATE TABLE tickets (
  id            INTEGER PRIMARY KEY,
  pid_tag       BLOB    NOT NULL UNIQUE,
  token_hash    BLOB    NOT NULL UNIQUE,
  issued_at     INTEGER NOT NULL,
  revoked_at    INTEGER,
  revoke_reason TEXT,
  abuse_score   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- migration: 2
CREATE TABLE merchants (
  id             TEXT    PRIMARY KEY,
  name           TEXT    NOT NULL,
  webhook_url    TEXT    NOT NULL,
  webhook_secret TEXT    NOT NULL,
  created_at     INTEGER NOT NULL,
  disabled_at    INTEGER
) STRICT;

-- Several keys per merchant allow rotation without downtime; key_id is the
-- `keyid` parameter a request signature names.
CREATE TABLE merchant_keys (
  key_id      TEXT    PRIMARY KEY,
  merchant_id TEXT    NOT NULL REFERENCES merchants (id),
  public_key  BLOB    NOT NULL CHECK (length(public_key) = 32),
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
) STRICT;

CREATE INDEX merchant_keys_by_merchant ON merchant_keys (merchant_id);

-- An invoice's payment id is stored in clear (it is inside the integrated
-- address the merchant shows anyway) and as the tag payments are keyed by.
CREATE TABLE invoices (
  seq               INTEGER PRIMARY KEY,
  id                TEXT    NOT NULL UNIQUE,
  merchant_id       TEXT    NOT NULL REFERENCES merchants (id),
  order_id          TEXT,
  idempotency_key   TEXT,
  pid_tag           BLOB    NOT NULL UNIQUE,
  payment_id        TEXT    NOT NULL,
  address           TEXT    NOT NULL,
  amount            INTEGER NOT NULL CHECK (amount > 0),
  description       TEXT,
  metadata          TEXT    NOT NULL DEFAULT '{}',
  confirmations     INTEGER NOT NULL,
  status            TEXT    NOT NULL
    CHECK (status IN ('New', 'Processing', 'Settled', 'Expired', 'Invalid')),
  additional_status TEXT    NOT NULL DEFAULT 'None'
    CHECK (additional_status IN ('None', 'PaidPartial', 'PaidOver', 'PaidLate')),
  created_at        INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  digest            TEXT    NOT NULL,
  UNIQUE (merchant_id, order_id),
  UNIQUE (merchant_id, idempotency_key)
) STRICT;

CREATE INDEX invoices_by_merchant ON invoices (merchant_id, seq);
CREATE INDEX invoices_open ON invoices (expires_at) WHERE status = 'New';

ALTER TABLE payments ADD COLUMN invoice_seq INTEGER REFERENCES invoices (seq);
CREATE INDEX payments_by_invoice ON payments (invoice_seq) WHERE invoice_seq IS NOT NULL;

-- The webhook outbox: rows are written in the same transaction as the
-- change they announce and deleted never; `delivered_at` or `failed_at`
-- ends retries. Retry times are in milliseconds so that a backoff schedule
-- shorter than a second can be expressed; the other times are unix seconds.
-- `original_id` names the first delivery of the same event for a
-- redelivery and is NULL otherwise.
CREATE TABLE webhook_deliveries (
  seq                INTEGER PRIMARY KEY,
  id                 TEXT    NOT NULL UNIQUE,
  merchant_id        TEXT    NOT NULL REFERENCES merchants (id),
  invoice_id         TEXT    NOT NULL,
  type               TEXT    NOT NULL,
  body               TEXT    NOT NULL,
  original_id        TEXT    REFERENCES webhook_deliveries (id),
  created_at         INTEGER NOT NULL,
  next_attempt_at_ms INTEGER NOT NULL,
  attempts           INTEGER NOT NULL DEFAULT 0,
  delivered_at       INTEGER,
  failed_at          INTEGER
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at_ms)
  WHERE delivered_at IS NULL AND failed_at IS NULL;
-- The per-invoice ordering check: is an earlier event still open?
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (merchant_id, invoice_id, seq)
  WHERE delivered_at IS NULL AND failed_at IS NULL;
-- The admin listings.
CREATE INDEX webhook_deliveries_by_invoice ON webhook_deliveries (invoice_id, seq);
CREATE INDEX webhook_deliveries_by_merchant ON webhook_deliveries (merchant_id, seq);

-- One row per HTTP attempt: `status` when the merchant answered, `error`
-- (a stable code such as 'timeout') when it did not.
CREATE TABLE webhook_attempts (
  id          INTEGER PRIMARY KEY,
  delivery_id TEXT    NOT NULL REFERENCES webhook_deliveries (id),
  at          INTEGER NOT NULL,
  status      INTEGER,
  error       TEXT,
  duration_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id);

-- migration: 3
-- A redeem reads a ticket payment id's payments by its tag. The index holds
-- every column that read needs, so it never visits the table, whose rows
-- for random tags lie on as many random pages (bench/README.md,
-- redeem-claim).
DROP INDEX payments_by_pid;
CREATE INDEX payments_by_pid
  ON payments (pid_tag, invoice_seq, state, amount, height, required_confirmations);

-- migration: 4
-- A token starts with its payment id's tag (src/tickets/secrets.ts), so a
-- ticket is found by pid_tag and the token hash needs no index of its own:
-- that second random-key unique index was half of every claim's cost.
-- Tokens issued before this migration do not start with their tag and are
-- no longer found.
CREATE TABLE tickets_v4 (
  id            INTEGER PRIMARY KEY,
  pid_tag       BLOB    NOT NULL UNIQUE,
  token_hash    BLOB    NOT NULL,
  issued_at     INTEGER NOT NULL,
  revoked_at    INTEGER,
  revoke_reason TEXT,
  abuse_score   INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO tickets_v4 (id, pid_tag, token_hash, issued_at, revoked_at, revoke_reason, abuse_score)
  SELECT id, pid_tag, token_hash, issued_at, revoked_at, revoke_reason, abuse_score FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_v4 RENAME TO tickets;
