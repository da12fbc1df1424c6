import t from 'tap'
import { buildApp, type ErrorBody, type UserBody } from './fixtures/app.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('create, read back, list: a round trip', async (t) => {
  const app = await buildApp(t)
  t.same((await app.inject('/users')).json(), [], 'an empty list to begin with')

  const created = await app.inject({ method: 'POST', url: '/users', payload: { name: 'Ada Lovelace', email: 'ada@example.com' } })
  t.equal(created.statusCode, 201)
  const ada = created.json<UserBody>()
  t.match(ada, { name: 'Ada Lovelace', email: 'ada@example.com' })
  t.match(ada.id, UUID_V4, 'the server assigns a random UUID')
  t.equal(new Date(ada.createdAt).toISOString(), ada.createdAt, 'createdAt is an ISO 8601 timestamp')
  t.same(Object.keys(ada).sort(), ['createdAt', 'email', 'id', 'name'], 'nothing but the user goes out')
  t.equal(created.headers.location, `/users/${ada.id}`)

  const read = await app.inject(`/users/${ada.id}`)
  t.equal(read.statusCode, 200)
  t.same(read.json(), ada)
  t.same((await app.inject(`/users/${ada.id.toUpperCase()}`)).json(), ada, 'ids are matched case-insensitively, as UUIDs are')

  const grace = (await app.inject({ method: 'POST', url: '/users', payload: { name: 'Grace Hopper', email: 'grace@example.com' } })).json<UserBody>()
  const list = await app.inject('/users')
  t.equal(list.statusCode, 200)
  t.same(list.json(), [ada, grace], 'listed in creation order')
})

t.test('unknown ids are 404, malformed ids 400', async (t) => {
  const app = await buildApp(t)
  const missing = await app.inject('/users/0b7f5a0e-3c1d-4d7e-9a4b-2f6c8e1d0a93')
  t.equal(missing.statusCode, 404)
  t.match(missing.json<ErrorBody>(), { statusCode: 404, code: 'FST_REG_USERS_NOT_FOUND' })

  const malformed = await app.inject('/users/42')
  t.equal(malformed.statusCode, 400)
  t.match(malformed.json<ErrorBody>(), { code: 'FST_ERR_VALIDATION', message: 'params/id must be a UUID' })
})

t.test('a second user with the same email is a 409, whatever its case', async (t) => {
  const app = await buildApp(t)
  const first = await app.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })
  t.equal(first.statusCode, 201)
  for (const email of ['ada@example.com', 'ADA@Example.com']) {
    const again = await app.inject({ method: 'POST', url: '/users', payload: { name: 'Someone else', email } })
    t.equal(again.statusCode, 409, email)
    t.match(again.json<ErrorBody>(), { statusCode: 409, code: 'FST_REG_USERS_DUPLICATE_EMAIL' })
  }
  t.equal((await app.inject('/users')).json<UserBody[]>().length, 1, 'nothing was stored')
})

t.test('bad bodies are 400 with a message that names the field', async (t) => {
  const app = await buildApp(t)
  const cases: Array<[string, unknown, string]> = [
    ['missing name', { email: 'ada@example.com' }, 'body/name is required'],
    ['missing email', { name: 'Ada' }, 'body/email is required'],
    ['empty name', { name: '', email: 'ada@example.com' }, 'body/name must be a non-empty string of at most 200 characters'],
    ['blank name', { name: '   ', email: 'ada@example.com' }, 'body/name must be a non-empty string of at most 200 characters'],
    ['empty email', { name: 'Ada', email: '' }, 'body/email must be an email address such as ada@example.com'],
    ['bad email', { name: 'Ada', email: 'ada.example.com' }, 'body/email must be an email address such as ada@example.com'],
    ['email not a string', { name: 'Ada', email: 42 }, 'body/email must be an email address such as ada@example.com'],
    ['unknown field', { name: 'Ada', email: 'ada@example.com', admin: true }, 'body/admin is not a known field'],
    ['an id of our choosing', { id: 'mine', name: 'Ada', email: 'ada@example.com' }, 'body/id is not a known field'],
    ['not an object', ['Ada', 'ada@example.com'], 'body must be a JSON object { name, email }'],
    ['two problems', { name: '' }, 'body/email is required, body/name must be a non-empty string of at most 200 characters']
  ]
  for (const [what, payload, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/users', payload: payload as object })
    t.equal(res.statusCode, 400, what)
    t.match(res.json<ErrorBody>(), { statusCode: 400, code: 'FST_ERR_VALIDATION', message }, what)
  }
  const noBody = await app.inject({ method: 'POST', url: '/users' })
  t.equal(noBody.statusCode, 400, 'no body at all')
  t.match(noBody.json<ErrorBody>(), { code: 'FST_ERR_VALIDATION', message: 'body must be a JSON object { name, email }' })
  t.same((await app.inject('/users')).json(), [], 'nothing was stored')
})

t.test('an oversized body is refused before it is parsed', async (t) => {
  const app = await buildApp(t)
  const res = await app.inject({ method: 'POST', url: '/users', payload: { name: 'x'.repeat(20_000), email: 'ada@example.com' } })
  t.equal(res.statusCode, 413)
  t.match(res.json<ErrorBody>(), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
})

t.test('strings that are not well-formed Unicode are 400 naming the field, and nothing is stored', async (t) => {
  const app = await buildApp(t)
  // Written as JSON escapes: a lone surrogate cannot be sent as UTF-8 at all.
  const cases: Array<[string, string, RegExp]> = [
    ['lone high surrogate in name', '{"name":"x\\ud800y","email":"ada@example.com"}', /^body\/name /],
    ['lone low surrogate in email', '{"name":"Ada","email":"a\\udc00@example.com"}', /^body\/email /],
    ['reversed pair', '{"name":"\\udc00\\ud800","email":"ada@example.com"}', /^body\/name /],
    ['in a field name', '{"name":"Ada","email":"ada@example.com","\\ud800":1}', /^body\/\ud800 /]
  ]
  for (const [what, payload, field] of cases) {
    const res = await app.inject({ method: 'POST', url: '/users', headers: { 'content-type': 'application/json' }, payload })
    t.match([res.statusCode, res.json<ErrorBody>()], [400, { code: 'FST_ERR_VALIDATION', message: field }], what)
  }
  t.same((await app.inject('/users')).json(), [], 'nothing was stored')

  // Negative control: a real pair (an emoji) is well-formed, stored and read back exactly as sent.
  const emoji = await app.inject({ method: 'POST', url: '/users', headers: { 'content-type': 'application/json' }, payload: '{"name":"Ada \\ud83d\\ude00","email":"ada@example.com"}' })
  t.equal(emoji.statusCode, 201)
  const read = await app.inject(`/users/${emoji.json<UserBody>().id}`)
  t.equal(read.json<UserBody>().name, 'Ada 😀', 'what the 201 said is what was stored')
})
