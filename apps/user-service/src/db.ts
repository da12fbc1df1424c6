import Database from 'better-sqlite3'

// Opens the users database and brings its schema up to date. Queries live in users-repository.ts.

/**
 * How long a statement waits for another connection's lock before failing with SQLITE_BUSY. better-sqlite3
 * is synchronous, so this is also the longest a contended write can stall the event loop; with WAL only
 * writers contend, and our writes are single-row inserts, so real waits are far shorter.
 */
const BUSY_TIMEOUT_MS = 2000

export type UsersDatabase = Database.Database

/** `path` is a file (shared by every replica in dev) or `:memory:` (tests: private to this connection). */
export function openDatabase (path: string): UsersDatabase {
  const db = new Database(path)
  try {
    // First, so that the WAL switch and the migration below wait for replicas starting at the same moment.
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    // WAL: readers never block the writer or each other, which is what lets replicas share one file.
    db.pragma('journal_mode = WAL')
    // Safe with WAL (a crash loses at most the last commits, never consistency) and avoids an fsync per insert.
    db.pragma('synchronous = NORMAL')
    migrate(db)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

function migrate (db: UsersDatabase): void {
  // NOCASE: Ada@example.com and ada@example.com are one mailbox in practice, so they conflict (409).
  db.exec(`
    CREATE TABLE IF NOT EXISTS users (
      id         TEXT PRIMARY KEY,
      name       TEXT NOT NULL,
      email      TEXT NOT NULL UNIQUE COLLATE NOCASE,
      created_at TEXT NOT NULL
    )
  `)
}
