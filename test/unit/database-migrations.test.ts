import { join } from 'node:path';

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';

import { migrate, openDatabase } from '../../src/storage/database.js';
import { tempDir } from '../support/temp-service.js';

/** A database built by migrations 1 to `version` only, as an older release left it. */
function databaseAt(version: number): { file: string; db: Database.Database } {
  const file = join(tempDir(), 'old.db');
  const db = new Database(file);
  migrate(db, version);
  return { file, db };
}

describe('schema migrations', () => {
  it('keep every ticket, and its token hash, when the token hash index is dropped (migration 4)', () => {
    const { file, db } = databaseAt(3);
    const insert = db.prepare(
      `INSERT INTO tickets (pid_tag, token_hash, issued_at, revoked_at, revoke_reason, abuse_score)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    insert.run(Buffer.alloc(16, 1), Buffer.alloc(32, 2), 100, null, null, 0);
    insert.run(Buffer.alloc(16, 3), Buffer.alloc(32, 4), 200, 250, 'spam', 7);
    const before = db.prepare('SELECT * FROM tickets ORDER BY id').all();
    db.close();

    const migrated = openDatabase(file);
    try {
      expect(migrated.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(4);
      expect(migrated.prepare('SELECT * FROM tickets ORDER BY id').all()).toEqual(before);
      const indexed = migrated
        .prepare("SELECT name FROM pragma_index_list('tickets') WHERE \"unique\" = 1")
        .pluck()
        .all();
      expect(indexed).toHaveLength(1);
      // The tag is still unique: a second claim of the same tag is refused.
      expect(() =>
        migrated
          .prepare('INSERT INTO tickets (pid_tag, token_hash, issued_at) VALUES (?, ?, ?)')
          .run(Buffer.alloc(16, 1), Buffer.alloc(32, 9), 300),
      ).toThrow(/UNIQUE/);
    } finally {
      migrated.close();
    }
  });

  it('answer a redeem lookup from the payments index alone (migration 3)', () => {
    const db = openDatabase(join(tempDir(), 'plan.db'));
    try {
      const plan = db
        .prepare(
          `EXPLAIN QUERY PLAN SELECT state, amount, height, required_confirmations FROM payments
           WHERE pid_tag = ? AND invoice_seq IS NULL`,
        )
        .all(Buffer.alloc(16)) as { detail: string }[];
      expect(plan.map((row) => row.detail).join('\n')).toContain('COVERING INDEX payments_by_pid');
    } finally {
      db.close();
    }
  });
});
