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

/**
 * The schema's history, applied in order inside one IMMEDIATE transaction, so replicas starting together
 * against one file migrate it exactly once (the others wait on the write lock, then find nothing to do).
 * `PRAGMA user_version` counts the steps applied. A new database runs every step: one path, tested once.
 */
const MIGRATIONS: readonly string[] = [
  // 1. The first schema. NOCASE: Ada@example.com and ada@example.com are one mailbox in practice (409).
  `CREATE TABLE IF NOT EXISTS users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
  )`,
  // 2. A key for keyset paging. Ids are random UUIDs, so they give no order; the implicit rowid did, but
  // VACUUM may renumber it and SQLite may reuse the largest one after a delete. An INTEGER PRIMARY KEY
  // AUTOINCREMENT is never reused or renumbered: a user created while a client pages always gets a
  // larger key than every page already served. SQLite cannot change a primary key in place, so the table
  // is rebuilt, keeping the existing rows' order (their rowid becomes their seq). Replicas still running
  // the previous version keep working: they insert without `seq` and order by rowid, which `seq` now is.
  `CREATE TABLE users_v2 (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
  );
  INSERT INTO users_v2 (seq, id, name, email, created_at) SELECT rowid, id, name, email, created_at FROM users ORDER BY rowid;
  DROP TABLE users;
  ALTER TABLE users_v2 RENAME TO users`
]

/** The number of migrations applied to a database opened by this version. */
export const SCHEMA_VERSION = MIGRATIONS.length

function migrate (db: UsersDatabase): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number
    // Already migrated, possibly by a newer version (a rollback): never lower the number it recorded.
    if (version >= SCHEMA_VERSION) return
    for (const step of MIGRATIONS.slice(version)) db.exec(step)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}
