import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { openDatabase } from '../src/db.js'
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
