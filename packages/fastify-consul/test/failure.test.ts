import t from 'tap'
import { classifyFailure, dispatchFailed, type Failure } from '../src/discovery/dispatch/failure.js'

const coded = (code: string): Error => Object.assign(new Error(code), { code })
const of = (code: string): Failure => classifyFailure(coded(code))

t.test('kind: what counts against an instance (outlier detection)', async (t) => {
  for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'FST_REG_DISCOVERY_UPSTREAM_UNUSABLE']) t.equal(of(code).kind, 'connect', code)
  for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) t.equal(of(code).kind, 'timeout', code)
  for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']) t.equal(of(code).kind, 'reset', `${code}: a reset may be a keep-alive race, it counts but does not eject at once`)
  for (const code of ['UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'UND_ERR_ABORTED', 'FST_REG_DISCOVERY_NO_INSTANCE']) t.equal(of(code).kind, undefined, code)
  t.equal(classifyFailure(new Error('no code')).kind, undefined)
})

t.test('connection: an idempotent request may go elsewhere', async (t) => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'FST_REG_DISCOVERY_UPSTREAM_UNUSABLE']) t.ok(of(code).connection, code)
  for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'FST_REG_DISCOVERY_NO_INSTANCE']) t.notOk(of(code).connection, code)
  t.notOk(classifyFailure(new Error('no code')).connection)
})

t.test('neverSent: any method may go elsewhere', async (t) => {
  for (const code of ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'FST_REG_DISCOVERY_UPSTREAM_UNUSABLE']) t.ok(of(code).neverSent, code)
  for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']) t.notOk(of(code).neverSent, `${code}: a reset may come after the request was sent`)
  t.notOk(of('UND_ERR_CLOSED').neverSent)
  t.notOk(classifyFailure(new Error('no code')).neverSent)
})

t.test('ETIMEDOUT: the host is gone (eject at once), but the request may have left (no retry unless idempotent)', async (t) => {
  t.match(of('ETIMEDOUT'), { kind: 'connect', connection: true, neverSent: false, late: false })
  // Negative control: undici's own connect timeout is the unambiguous case.
  t.match(of('UND_ERR_CONNECT_TIMEOUT'), { kind: 'connect', connection: true, neverSent: true, late: true })
})

t.test('late: the upstream did not start answering in time (a gateway 504)', async (t) => {
  for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED']) t.ok(of(code).late, code)
  t.match(of('FST_REG_DISCOVERY_DEADLINE_EXCEEDED'), { kind: undefined, neverSent: false, connection: false }, 'a passed deadline counts against no instance and is never retried')
  for (const code of ['UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET']) t.notOk(of(code).late, code)
  t.notOk(classifyFailure(new Error('no code')).late)
})

t.test('one frozen answer per class', async (t) => {
  t.ok(Object.isFrozen(of('ECONNREFUSED')))
  t.equal(of('ECONNREFUSED'), of('EHOSTUNREACH'), 'shared rows, no allocation per failure')
})

t.test('looks through causes: a dispatcher’s give-up and a proxy’s wrapper around it (#29)', async (t) => {
  const gaveUp = new Error('gave up', { cause: coded('UND_ERR_HEADERS_TIMEOUT') })
  t.equal(classifyFailure(gaveUp), of('UND_ERR_HEADERS_TIMEOUT'), 'the last try’s row')
  t.equal(classifyFailure(new Error('reply-from', { cause: gaveUp })), of('UND_ERR_HEADERS_TIMEOUT'), 'two links down')
  t.equal(classifyFailure(coded('ECONNREFUSED')), of('ECONNREFUSED'), 'a known code wins over its cause')
  const three = new Error('1', { cause: new Error('2', { cause: new Error('3', { cause: coded('ECONNREFUSED') }) }) })
  t.equal(classifyFailure(three).kind, undefined, 'three links without a code: says nothing')
  const loop = new Error('loop')
  loop.cause = loop
  t.equal(classifyFailure(loop).kind, undefined, 'a cycle of causes ends')
  t.equal(classifyFailure(new Error('x', { cause: 'not an error' })).kind, undefined)
})

t.test('dispatchFailed: the give-up error names the service, the tries and the last code, never a message', async (t) => {
  const last = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:3001'), { code: 'ECONNREFUSED' })
  const err = dispatchFailed('users', last, ['users-1', 'users-2'])
  t.match(err, { code: 'FST_REG_DISCOVERY_DISPATCH_FAILED', statusCode: 502, tries: 2, instances: ['users-1', 'users-2'] })
  t.equal(err.cause, last)
  t.equal(err.message, 'Gave up on users after 2 attempt(s); the last failed with ECONNREFUSED (see cause)')
  t.equal(dispatchFailed('users', new TypeError('at 10.1.2.3'), ['users-1']).message, 'Gave up on users after 1 attempt(s); the last failed with TypeError (see cause)', 'no code: its class, not its message')
  t.equal(classifyFailure(err), classifyFailure(last), 'classified as its cause')
})
