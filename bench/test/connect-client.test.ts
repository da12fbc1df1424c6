import t from 'tap'
import type { PeerCertificate } from 'node:tls'
import { callerTls, codeOf, describe, errorName, spiffeService } from '../src/connect-client.js'

// The bench's Connect caller checks the server as Go's `connect` package does: its one SPIFFE URI names
// the service it meant to reach, in the trust domain of the roots. P19 and R14 run it against real
// servers; here the refusals, which no honest server in those runs provokes.

const TD = '11111111-2222-3333-4444-555555555555.consul'
const cert = (subjectaltname?: string): PeerCertificate => ({ subjectaltname } as unknown as PeerCertificate)
const svc = (name: string, td = TD): string => `URI:spiffe://${td}/ns/default/dc/dc1/svc/${name}`

t.test('spiffeService: the service of exactly one Connect URI in our trust domain, else nothing', async (t) => {
  t.equal(spiffeService(cert(svc('web')), TD), 'web')
  t.equal(spiffeService(cert(`DNS:web.local, ${svc('web')}`), TD), 'web', 'a DNS name beside it does not matter')
  t.equal(spiffeService(cert(undefined), TD), undefined, 'no SAN at all')
  t.equal(spiffeService(cert(`${svc('web')}, ${svc('admin')}`), TD), undefined, 'two URIs')
  t.equal(spiffeService(cert(svc('web', 'elsewhere.consul')), TD), undefined, 'another trust domain')
  t.equal(spiffeService(cert('URI:https://web.example/'), TD), undefined, 'not SPIFFE')
  t.equal(spiffeService(cert(`URI:spiffe://${TD}/agent/client/dc/dc1/id/node-1`), TD), undefined, 'an agent identity')
})

t.test('callerTls: the server must be the service asked for (a leaf of another one is refused)', async (t) => {
  const tls = callerTls({ service: 'caller', ca: ['ca'], cert: 'c', key: 'k', trustDomain: TD }, 'web')
  t.same([tls.ca, tls.cert, tls.key], [['ca'], 'c', 'k'])
  t.equal(tls.checkServerIdentity('127.0.0.1', cert(svc('web'))), undefined)
  t.match(tls.checkServerIdentity('127.0.0.1', cert(svc('billing'))), { message: `the server is not web of ${TD}` })
})

t.test('codeOf, errorName and describe: what the log lines say of an outcome', async (t) => {
  t.equal(codeOf('{"statusCode":403,"code":"FST_REG_CONNECT_FORBIDDEN"}'), 'FST_REG_CONNECT_FORBIDDEN')
  t.equal(codeOf('{"pong":true}'), undefined)
  t.equal(codeOf('{"code":7}'), undefined, 'a code that is not a string')
  t.equal(codeOf('null'), undefined)
  t.equal(codeOf('<html>'), undefined, 'not JSON')
  t.equal(errorName(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), 'ECONNRESET')
  t.equal(errorName(new Error('boom')), 'boom')
  t.equal(describe(undefined), 'nothing')
  t.equal(describe({ status: 200, reused: false, ms: 1 }), '200 (new connection)')
  t.equal(describe({ status: 403, code: 'FST_REG_CONNECT_FORBIDDEN', reused: true, ms: 1 }), '403 FST_REG_CONNECT_FORBIDDEN (kept-alive connection)')
  t.equal(describe({ error: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', reused: false, ms: 1 }), 'error ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE (new connection)')
  t.equal(describe({ reused: false, ms: 1 }), 'error unknown (new connection)')
})
