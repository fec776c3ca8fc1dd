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
