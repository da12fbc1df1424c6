import t from 'tap'
import { endToEndHeaders, forwardedHeaders } from '../src/headers.js'

t.test('response: hop-by-hop headers and those Connection names are dropped, the rest kept as is', async (t) => {
  t.same(endToEndHeaders({
    connection: 'Keep-Alive, X-Hop , upgrade',
    'keep-alive': 'timeout=72',
    'proxy-connection': 'keep-alive',
    te: 'trailers',
    trailer: 'x-checksum',
    'transfer-encoding': 'chunked',
    upgrade: 'h2c',
    'x-hop': '1',
    'x-instance-id': 'users-1',
    'set-cookie': ['a=1', 'b=2'],
    'content-type': 'application/json'
  }), {
    'x-instance-id': 'users-1',
    'set-cookie': ['a=1', 'b=2'],
    'content-type': 'application/json'
  })
  t.same(endToEndHeaders({ 'x-instance-id': 'users-1' }), { 'x-instance-id': 'users-1' }, 'without a Connection header')
})

t.test('request: X-Forwarded-For grows, -Host and -Proto say what the gateway was asked', async (t) => {
  const request = { ip: '10.0.0.5', host: 'api.example.com', protocol: 'https' as const }
  t.same(forwardedHeaders(request, { host: 'user-service', accept: '*/*' }), {
    host: 'user-service',
    accept: '*/*',
    'x-forwarded-for': '10.0.0.5',
    'x-forwarded-host': 'api.example.com',
    'x-forwarded-proto': 'https'
  })
  t.match(forwardedHeaders(request, { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' }), { 'x-forwarded-for': '203.0.113.9, 198.51.100.1, 10.0.0.5' })
  t.match(forwardedHeaders(request, { 'x-forwarded-for': ['203.0.113.9', '198.51.100.1'] }), { 'x-forwarded-for': '203.0.113.9, 198.51.100.1, 10.0.0.5' })
  t.match(forwardedHeaders(request, { 'x-forwarded-host': 'spoofed.example', 'x-forwarded-proto': 'ftp' }), {
    'x-forwarded-host': 'api.example.com',
    'x-forwarded-proto': 'https'
  }, 'a client cannot choose what the upstream is told about the original request')
})
