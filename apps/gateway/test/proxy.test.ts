import t from 'tap'
import { errors } from '@reg/fastify-consul'
import { upstreamError } from '../src/proxy.js'

// The mapping alone; test/app.test.ts and test/replicas.test.ts drive it through real upstreams.

function wrapped (code: string): Error {
  // What reply-from hands onError: its own error, with the dispatcher's as the cause.
  return new Error('wrapped by reply-from', { cause: Object.assign(new Error('from the dispatcher'), { code }) })
}

t.test('no instance: the discovery error itself, a 503', async (t) => {
  const noInstance = new errors.NoInstanceError('users')
  const err = upstreamError('users', new Error('wrapped', { cause: noInstance }))
  t.equal(err, noInstance)
  t.match(err, { code: 'FST_REG_DISCOVERY_NO_INSTANCE', statusCode: 503 })
})

t.test('no answer in time: 504', async (t) => {
  for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']) {
    const cause = wrapped(code)
    t.match(upstreamError('users', cause), { code: 'FST_REG_GATEWAY_TIMEOUT', statusCode: 504, cause: { code } }, code)
  }
})

t.test('anything else: 502, the cause kept for the log', async (t) => {
  for (const code of ['ECONNREFUSED', 'UND_ERR_SOCKET', 'ECONNRESET']) {
    t.match(upstreamError('users', wrapped(code)), { code: 'FST_REG_GATEWAY_BAD_GATEWAY', statusCode: 502, cause: { code } }, code)
  }
  const bare = new Error('bad status code')
  t.match(upstreamError('users', bare), { code: 'FST_REG_GATEWAY_BAD_GATEWAY', cause: bare }, 'an error without a cause is its own cause')
})

t.test('the dispatcher gave up (#29): its coded error is looked through to the last try’s code', async (t) => {
  const gaveUp = (code: string): Error => new errors.DispatchFailedError('users', 3, code, { cause: Object.assign(new Error(code), { code }) })
  // What reply-from hands onError for a code it does not know: an InternalServerError around ours.
  const viaReplyFrom = (code: string): Error => new Error('reply-from', { cause: gaveUp(code) })
  t.match(upstreamError('users', viaReplyFrom('UND_ERR_HEADERS_TIMEOUT')), { code: 'FST_REG_GATEWAY_TIMEOUT', statusCode: 504, cause: { code: 'FST_REG_DISCOVERY_DISPATCH_FAILED' } })
  t.match(upstreamError('users', viaReplyFrom('ECONNREFUSED')), { code: 'FST_REG_GATEWAY_BAD_GATEWAY', statusCode: 502 })
})
