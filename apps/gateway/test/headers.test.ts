import t from 'tap'
import { endToEndHeaders, upstreamRequestHeaders, type Origin } from '../src/headers.js'

// The rules alone; test/intermediary.test.ts drives them through the real gateway process.

const origin: Origin = { ip: '10.0.0.5', host: 'api.example.com', protocol: 'https' }
const via = '1.1 gateway-a'

t.test('response: hop-by-hop headers and those Connection names are dropped, the rest kept as is', async (t) => {
  t.same(endToEndHeaders({
    connection: 'Keep-Alive, X-Hop , upgrade',
    'keep-alive': 'timeout=72',
    'proxy-connection': 'keep-alive',
    'proxy-authenticate': 'Basic realm="proxy"',
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

t.test('request: hop-by-hop and consumed headers are dropped; TE keeps only trailers', async (t) => {
  const sent = upstreamRequestHeaders(origin, {
    host: 'user-service',
    accept: '*/*',
    expect: '100-continue',
    'keep-alive': '300',
    upgrade: 'h2c',
    te: 'gzip, Trailers',
    trailer: 'x-checksum',
    'proxy-connection': 'keep-alive',
    'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
    'x-real-ip': '6.6.6.6'
  }, via)
  t.same(sent, {
    host: 'user-service',
    accept: '*/*',
    te: 'trailers',
    forwarded: 'for=10.0.0.5;host=api.example.com;proto=https',
    'x-forwarded-for': '10.0.0.5',
    'x-forwarded-host': 'api.example.com',
    'x-forwarded-proto': 'https',
    via: '1.1 gateway-a'
  })
  t.notOk('te' in upstreamRequestHeaders(origin, { te: 'gzip' }, via), 'TE without trailers is dropped entirely')
})

t.test('request: Forwarded and X-Forwarded-For grow; -Host and -Proto say what the gateway was asked', async (t) => {
  t.match(upstreamRequestHeaders(origin, { forwarded: 'for=203.0.113.9;proto=http', 'x-forwarded-for': '203.0.113.9, 198.51.100.1' }, via), {
    forwarded: 'for=203.0.113.9;proto=http, for=10.0.0.5;host=api.example.com;proto=https',
    'x-forwarded-for': '203.0.113.9, 198.51.100.1, 10.0.0.5'
  }, "the client's elements stay first; the gateway's own is last")
  t.match(upstreamRequestHeaders(origin, { forwarded: ['for=a', 'for=b'], 'x-forwarded-for': ['203.0.113.9', '198.51.100.1'] }, via), {
    forwarded: 'for=a, for=b, for=10.0.0.5;host=api.example.com;proto=https',
    'x-forwarded-for': '203.0.113.9, 198.51.100.1, 10.0.0.5'
  }, 'repeated header lines are one list')
  t.match(upstreamRequestHeaders(origin, { 'x-forwarded-host': 'spoofed.example', 'x-forwarded-proto': 'ftp' }, via), {
    'x-forwarded-host': 'api.example.com',
    'x-forwarded-proto': 'https'
  }, 'a client cannot choose what the upstream is told about the original request')
})

t.test('request: Forwarded values are quoted where RFC 7239 needs it', async (t) => {
  const v6 = upstreamRequestHeaders({ ip: '::1', host: 'localhost:8080', protocol: 'http' }, {}, via)
  t.equal(v6.forwarded, 'for="[::1]";host="localhost:8080";proto=http', 'IPv6 in brackets and quotes; host:port quoted')
  const odd = upstreamRequestHeaders({ ip: '10.0.0.5', host: 'a"b\\c', protocol: 'http' }, {}, via)
  t.equal(odd.forwarded, 'for=10.0.0.5;host="a\\"b\\\\c";proto=http', 'quotes and backslashes escaped')
  const gone = upstreamRequestHeaders({ ip: undefined, host: 'api.example.com', protocol: 'http' }, {}, via)
  t.match(gone, { forwarded: 'for=unknown;host=api.example.com;proto=http', 'x-forwarded-for': 'unknown' }, 'a client whose socket is gone is unknown')
})

t.test('request: Via gets the gateway\'s element appended, after what earlier proxies wrote', async (t) => {
  t.equal(upstreamRequestHeaders(origin, {}, via).via, '1.1 gateway-a', 'the first proxy starts the list')
  t.equal(upstreamRequestHeaders(origin, { via: '1.0 fred, 1.1 p.example.net (Apache/1.1)' }, via).via, '1.0 fred, 1.1 p.example.net (Apache/1.1), 1.1 gateway-a')
  t.equal(upstreamRequestHeaders(origin, { via: ['1.1 a', '1.1 b'] }, via).via, '1.1 a, 1.1 b, 1.1 gateway-a', 'repeated header lines are one list')
})
