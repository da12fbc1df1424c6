import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { openDatabase, type UsersDatabase } from '../src/db.js'
import { CURSOR_SQL, PAGE_SQL, UsersRepository } from '../src/users-repository.js'
import { buildApp, type ErrorBody, type UserBody } from './fixtures/app.js'

// GET /users a page at a time: sizes, the Link header, a walk while users are created, bad parameters,
// and the query plan that makes a page cost the same whatever the table's size.

const NEXT = /^<(\/users\?limit=(\d+)&after=([0-9a-f-]{36}))>; rel="next"$/

/** `count` users inserted directly, in one transaction: seeding, not the API under test. */
function seed (db: UsersDatabase, count: number, from = 0): void {
  const repository = new UsersRepository(db)
  db.transaction(() => {
    for (let i = from; i < from + count; i++) repository.create({ name: `User ${i}`, email: `user${i}@example.com` })
  })()
}

t.test('pages: 50 by default, `limit` from 1 to 100, a Link rel="next" while more exist', async (t) => {
  const db = openDatabase(':memory:')
  t.teardown(() => db.close())
  seed(db, 120)
  const app = await buildApp(t, { db })

  const first = await app.inject('/users')
  t.equal(first.statusCode, 200)
  const users = first.json<UserBody[]>()
  t.equal(users.length, 50, 'the default page size')
  t.same(users.map((u) => u.name), Array.from({ length: 50 }, (_, i) => `User ${i}`), 'in creation order')
  t.match(first.headers.link, NEXT)
  t.equal(NEXT.exec(String(first.headers.link))![3], users[49]!.id, 'the cursor is the last id of the page')

  t.equal((await app.inject('/users?limit=1')).json<UserBody[]>().length, 1)
  const hundred = await app.inject('/users?limit=100')
  t.equal(hundred.json<UserBody[]>().length, 100)
  t.match(hundred.headers.link, /limit=100&/, 'the next page keeps the size asked for')

  const all = await app.inject('/users?limit=100')
  const rest = await app.inject(NEXT.exec(String(all.headers.link))![1]!)
  t.equal(rest.json<UserBody[]>().length, 20, 'the last page holds the rest')
  t.equal(rest.headers.link, undefined, 'and says there is no next one')

  const exact = openDatabase(':memory:')
  t.teardown(() => exact.close())
  seed(exact, 50)
  const full = await (await buildApp(t, { db: exact })).inject('/users')
  t.same([full.json<UserBody[]>().length, full.headers.link], [50, undefined], 'exactly one full page: no next link to an empty page')
})

t.test('following next visits every user exactly once while users are created meanwhile', async (t) => {
  const db = openDatabase(':memory:')
  t.teardown(() => db.close())
  seed(db, 95)
  const app = await buildApp(t, { db })

  const seen: string[] = []
  let url: string | undefined = '/users?limit=10'
  let created = 0
  while (url !== undefined) {
    const res: LightMyRequestResponse = await app.inject(url)
    t.equal(res.statusCode, 200)
    seen.push(...res.json<UserBody[]>().map((u) => u.name))
    // Between two pages, three more users arrive (for the first five pages).
    if (created < 15) {
      for (let i = 0; i < 3; i++) {
        const post = await app.inject({ method: 'POST', url: '/users', payload: { name: `Late ${created}`, email: `late${created}@example.com` } })
        t.equal(post.statusCode, 201)
        created++
      }
    }
    url = NEXT.exec(String(res.headers.link ?? ''))?.[1]
  }
  const expected = [...Array.from({ length: 95 }, (_, i) => `User ${i}`), ...Array.from({ length: 15 }, (_, i) => `Late ${i}`)]
  t.same(seen, expected, 'every user, once, in creation order, late ones included')
})

t.test('invalid limit or after: 400 naming the parameter; an unknown cursor is not "the end"', async (t) => {
  const app = await buildApp(t)
  const ada = (await app.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })).json<UserBody>()
  for (const query of ['limit=0', 'limit=101', 'limit=-1', 'limit=1.5', 'limit=abc', 'limit=', 'limit=050', 'limit=1&limit=2']) {
    const res = await app.inject(`/users?${query}`)
    t.equal(res.statusCode, 400, query)
    t.match(res.json<ErrorBody>(), { code: 'FST_ERR_VALIDATION', message: /^querystring\/limit / }, query)
  }
  for (const query of ['after=42', 'after=', `after=${ada.id}&after=${ada.id}`]) {
    const res = await app.inject(`/users?${query}`)
    t.match([res.statusCode, res.json<ErrorBody>()], [400, { code: 'FST_ERR_VALIDATION', message: /^querystring\/after / }], query)
  }
  const typo = await app.inject('/users?afer=x')
  t.match([typo.statusCode, typo.json<ErrorBody>()], [400, { code: 'FST_ERR_VALIDATION', message: /^querystring\/afer / }], 'an unknown parameter is refused, not ignored')

  const unknown = await app.inject('/users?after=0b7f5a0e-3c1d-4d7e-9a4b-2f6c8e1d0a93')
  t.match([unknown.statusCode, unknown.json<ErrorBody>()], [400, { code: 'FST_REG_USERS_UNKNOWN_CURSOR' }])
  const upper = await app.inject(`/users?after=${ada.id.toUpperCase()}`)
  t.same([upper.statusCode, upper.json()], [200, []], 'a cursor is an id: matched without regard to case')
})

/** Every line of SQLite's plan for `sql`, e.g. "SEARCH users USING INTEGER PRIMARY KEY (rowid>?)". */
function plan (db: UsersDatabase, sql: string, ...params: unknown[]): string[] {
  return db.prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all(...params).map((row) => row.detail)
}

/** A plan that reads the whole table or sorts it costs more as the table grows. */
function scansOrSorts (lines: string[]): boolean {
  return lines.some((line) => /^SCAN |TEMP B-TREE/.test(line))
}

t.test('the list query walks an index from the cursor: no scan, no sort, at 1,000 rows as at 100,000', async (t) => {
  const db = openDatabase(':memory:')
  t.teardown(() => db.close())
  for (const rows of [1_000, 100_000]) {
    seed(db, rows - (rows === 1_000 ? 0 : 1_000), rows === 1_000 ? 0 : 1_000)
    db.exec('ANALYZE')
    t.equal(db.prepare('SELECT count(*) FROM users').pluck().get(), rows)
    const page = plan(db, PAGE_SQL, 0, 51)
    t.same(page, ['SEARCH users USING INTEGER PRIMARY KEY (rowid>?)'], `${rows} rows: a range on the primary key`)
    t.notOk(scansOrSorts(page), `${rows} rows: no full scan, no temporary b-tree`)
    t.match(plan(db, CURSOR_SQL, 'x'), [/^SEARCH users USING (COVERING )?INDEX sqlite_autoindex_users_\d \(id=\?\)$/], `${rows} rows: the cursor is found through the unique index on id`)
  }
  // Negative control: the checks above would notice a query that orders by an unindexed column, or one
  // without a usable WHERE, so they cannot pass for a reason that has nothing to do with the index.
  t.ok(scansOrSorts(plan(db, 'SELECT id FROM users ORDER BY created_at LIMIT 50')), 'ordering by created_at sorts the whole table')
  t.ok(scansOrSorts(plan(db, 'SELECT id FROM users WHERE name > ? ORDER BY seq LIMIT 50', 'x')), 'a filter on an unindexed column scans')
})
