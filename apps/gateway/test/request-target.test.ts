import t from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { singleHost, targetOf } from '../src/request-target.js'

// The parsing alone; test/intermediary.test.ts sends these targets over raw sockets to the real gateway.

t.test('origin-form: the path without the query; the host is Host', async (t) => {
  t.same(targetOf({ url: '/users/7?x=1', host: 'api.example.com' }), { path: '/users/7', host: 'api.example.com' })
  t.same(targetOf({ url: '/users', host: 'api.example.com' }), { path: '/users', host: 'api.example.com' })
})

t.test('absolute-form: the path as written; the authority replaces Host', async (t) => {
  t.same(targetOf({ url: 'http://API.example.com:8080/users/7?x=1', host: 'ignored' }), { path: '/users/7', host: 'api.example.com:8080' })
  t.same(targetOf({ url: 'HTTPS://api.example.com/users/../x', host: 'ignored' }), { path: '/users/../x', host: 'api.example.com' }, 'not normalised: reply-from refuses ../')
  t.same(targetOf({ url: 'http://user:secret@api.example.com/users', host: 'ignored' }), { path: '/users', host: 'api.example.com' }, 'userinfo is dropped')
  t.same(targetOf({ url: 'http://api.example.com?x=1', host: 'ignored' }), { path: '/', host: 'api.example.com' }, 'an empty path is /')
  t.same(targetOf({ url: 'http://api.example.com', host: 'ignored' }), { path: '/', host: 'api.example.com' })
})

t.test('singleHost: more than one Host line, in any case, is FST_REG_GATEWAY_DUPLICATE_HOST', async (t) => {
  function run (rawHeaders: string[]): Error | undefined {
    let result: Error | undefined
    const request = { raw: { rawHeaders } } as unknown as FastifyRequest
    singleHost.call(undefined as never, request, {} as FastifyReply, (err?: Error) => { result = err })
    return result
  }
  t.equal(run(['Host', 'a', 'Accept', '*/*']), undefined, 'one Host')
  t.equal(run(['Accept', '*/*']), undefined, 'none (Node itself answers 400 to an HTTP/1.1 request without one)')
  t.match(run(['Host', 'a', 'host', 'b']), { code: 'FST_REG_GATEWAY_DUPLICATE_HOST', statusCode: 400 })
  t.match(run(['HOST', 'a', 'X-Host', 'c', 'Host', 'a']), { code: 'FST_REG_GATEWAY_DUPLICATE_HOST' }, 'even when both say the same')
})
