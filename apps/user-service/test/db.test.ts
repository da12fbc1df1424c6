import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import Database from 'better-sqlite3'
import { openDatabase, SCHEMA_VERSION } from '../src/db.js'
import { UsersRepository } from '../src/users-repository.js'

async function tempDir (t: { teardown (fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'user-service-db-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('a file database is in WAL mode with a busy timeout, and replicas share it', async (t) => {
  const path = join(await tempDir(t), 'users.db')
  const a = openDatabase(path)
  t.teardown(() => a.close())
  const b = openDatabase(path)
  t.teardown(() => b.close())

  t.equal(a.pragma('journal_mode', { simple: true }), 'wal')
  t.ok(Number(a.pragma('busy_timeout', { simple: true })) > 0, 'a writer waits for another replica instead of failing at once')

  const ada = new UsersRepository(a).create({ name: 'Ada', email: 'ada@example.com' })
  const other = new UsersRepository(b)
  t.same(other.get(ada.id), ada, 'a row written by one replica is read by another')
  t.throws(() => other.create({ name: 'Ada again', email: 'ADA@example.com' }), { code: 'FST_REG_USERS_DUPLICATE_EMAIL' }, 'the unique index holds across replicas')
})

t.test('opening the schema twice is harmless (every replica migrates on start)', async (t) => {
  const path = join(await tempDir(t), 'users.db')
  openDatabase(path).close()
  const db = openDatabase(path)
  t.teardown(() => db.close())
  t.same(new UsersRepository(db).page(10), { users: [], next: undefined })
})

t.test('a file that is not a database fails to open, with SQLite\'s code', async (t) => {
  const path = join(await tempDir(t), 'users.db')
  await writeFile(path, 'this is not a SQLite database, but it is long enough to have a header\n'.repeat(10))
  t.throws(() => openDatabase(path), { code: 'SQLITE_NOTADB' })
})

/** A database as the first version of this service left it: no seq column, user_version 0. */
function firstVersionDatabase (path: string): Database.Database {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE COLLATE NOCASE, created_at TEXT NOT NULL)')
  const insert = db.prepare('INSERT INTO users (id, name, email, created_at) VALUES (?, ?, ?, ?)')
  // Ids in the opposite order to creation: the migration must keep creation order, not sort by id.
  insert.run('ffffffff-0000-4000-8000-000000000001', 'First', 'first@example.com', '2024-01-01T00:00:00.000Z')
  insert.run('00000000-0000-4000-8000-000000000002', 'Second', 'second@example.com', '2024-01-02T00:00:00.000Z')
  return db
}

t.test('a database of the first version is migrated in place: rows, ids and creation order kept', async (t) => {
  const path = join(await tempDir(t), 'users.db')
  const old = firstVersionDatabase(path)
  t.teardown(() => old.close())

  const db = openDatabase(path)
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION)
  t.same(db.prepare('SELECT seq, id FROM users ORDER BY seq').all(), [
    { seq: 1, id: 'ffffffff-0000-4000-8000-000000000001' },
    { seq: 2, id: '00000000-0000-4000-8000-000000000002' }
  ], 'seq follows the old rowid, i.e. creation order')
  const page = new UsersRepository(db).page(10)
  t.same(page.users.map((u) => u.name), ['First', 'Second'])

  // A replica still on the first version shares the file during a rolling restart: its statements
  // (insert without seq, list by rowid) keep working on the new table, and its rows get a seq.
  old.prepare('INSERT INTO users (id, name, email, created_at) VALUES (?, ?, ?, ?)').run('11111111-0000-4000-8000-000000000003', 'Third', 'third@example.com', '2024-01-03T00:00:00.000Z')
  t.same(old.prepare('SELECT name FROM users ORDER BY rowid').pluck().all(), ['First', 'Second', 'Third'])
  t.same(new UsersRepository(db).page(10).users.map((u) => u.name), ['First', 'Second', 'Third'])
  t.throws(() => old.prepare('INSERT INTO users (id, name, email, created_at) VALUES (?, ?, ?, ?)').run('x', 'Dup', 'FIRST@example.com', 'now'), { code: 'SQLITE_CONSTRAINT_UNIQUE' }, 'the email rule survived the rebuild')
})

t.test('seq is never reused: a key handed out once stays behind every page served', async (t) => {
  const db = openDatabase(':memory:')
  t.teardown(() => db.close())
  const repository = new UsersRepository(db)
  repository.create({ name: 'A', email: 'a@example.com' })
  const b = repository.create({ name: 'B', email: 'b@example.com' })
  // No route deletes users; an operator might. AUTOINCREMENT keeps the next key above the deleted one.
  db.prepare('DELETE FROM users WHERE id = ?').run(b.id)
  repository.create({ name: 'C', email: 'c@example.com' })
  t.same(db.prepare('SELECT seq FROM users ORDER BY seq').pluck().all(), [1, 3])
})

t.test('a database migrated by a newer version keeps its version number', async (t) => {
  const path = join(await tempDir(t), 'users.db')
  openDatabase(path).close()
  const newer = new Database(path)
  newer.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  newer.close()
  const db = openDatabase(path)
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1, 'a rollback does not lower it')
})
