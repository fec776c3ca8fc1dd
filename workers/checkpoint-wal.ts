import Database from 'better-sqlite3';

/**
 * Worker handler: checkpoints a database's WAL from a connection of its
 * own, so that copying pages into the database file and syncing it never
 * holds the main thread, where the one writer commits. PASSIVE: it takes
 * what is committed and never waits for the writer.
 */

export type CheckpointItem = { file: string };

/** SQLite's answer: whether it was blocked, WAL frames, frames now in the database. */
export type CheckpointOutcome = { busy: number; log: number; checkpointed: number };

export default function checkpointWal(item: CheckpointItem): CheckpointOutcome {
  const db = new Database(item.file, { fileMustExist: true });
  try {
    // The same durability as the writer: the WAL is synced before the copy
    // and the database file after it.
    db.pragma('synchronous = NORMAL');
    const [outcome] = db.pragma('wal_checkpoint(PASSIVE)') as CheckpointOutcome[];
    return outcome!;
  } finally {
    db.close();
  }
}
