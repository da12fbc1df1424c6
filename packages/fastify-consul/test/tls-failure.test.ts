import { createServer as createTcpServer } from 'node:net'
import { readFileSync } from 'node:fs'
import { createServer as createTlsServer } from 'node:tls'
import { makeTlsFixture } from '@reg/testkit'
import t from 'tap'
import { resolveConnection } from '../src/consul/connection.js'
import { ConsulHttp } from '../src/consul/http.js'
import type { Credentials } from '../src/consul/credentials.js'
import { isTlsCode, probeTlsAlert, tlsFailure } from '../src/consul/tls-failure.js'

const conn = resolveConnection({ address: 'https://consul:8501' }, {})
const none: Credentials = { token: undefined, ca: undefined, cert: undefined, key: undefined, certNotAfter: undefined, version: 0 }
const withCert = (notAfter: Date): Credentials => ({ ...none, cert: 'PEM', key: 'PEM', certNotAfter: notAfter })
const now = new Date('2030-01-01T00:00:00Z')

t.test('each TLS failure gets its code and names the setting to change', async (t) => {
  t.match(tlsFailure('SELF_SIGNED_CERT_IN_CHAIN', 'x', conn, none, now), { code: 'FST_REG_CONSUL_TLS_UNTRUSTED', message: /CONSUL_CACERT/ })
  t.match(tlsFailure('ERR_TLS_CERT_ALTNAME_INVALID', 'x', conn, none, now), { code: 'FST_REG_CONSUL_TLS_SERVER_NAME', message: /CONSUL_TLS_SERVER_NAME/ })
  t.match(tlsFailure('CERT_HAS_EXPIRED', 'x', conn, none, now), { code: 'FST_REG_CONSUL_TLS_CERT_EXPIRED', message: /agent's cert_file/ })
  t.match(tlsFailure('ERR_SSL_WRONG_VERSION_NUMBER', 'x', conn, none, now), { code: 'FST_REG_CONSUL_TLS_NOT_OFFERED', message: /consul\.address/ })
  t.match(tlsFailure('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'x', conn, none, now), { code: 'FST_REG_CONSUL_TLS_CLIENT_CERT_REQUIRED', message: /CONSUL_CLIENT_CERT.*CONSUL_CLIENT_KEY/ })
  t.match(tlsFailure('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'x', conn, withCert(new Date('2031-01-01')), now), { code: 'FST_REG_CONSUL_TLS_CLIENT_CERT_REJECTED' })
  t.match(tlsFailure('ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE', 'x', conn, none, now), { code: 'FST_REG_CONSUL_TLS_CLIENT_CERT_REQUIRED' }, 'OpenSSL 3.2+ (Node 22, 24) names the same alert SSL/TLS_ALERT_…')
  t.match(tlsFailure('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'x', conn, none, now), { code: 'FST_REG_CONSUL_TLS' }, 'another alert is a TLS failure, not a certificate one')
  t.match(tlsFailure('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'x', conn, withCert(new Date('2029-01-01')), now), { code: 'FST_REG_CONSUL_TLS_CERT_EXPIRED', message: /CONSUL_CLIENT_CERT/ })
  t.match(tlsFailure('ERR_SSL_SOMETHING_NEW', 'detail', conn, none, now), { code: 'FST_REG_CONSUL_TLS', message: /ERR_SSL_SOMETHING_NEW: detail/ })
  t.ok(tlsFailure('CERT_HAS_EXPIRED', 'x', conn, none) instanceof Error, 'defaults to the current time')
})

t.test('isTlsCode separates TLS failures from outages', async (t) => {
  for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_ANYTHING', 'EPROTO']) t.ok(isTlsCode(code), code)
  for (const code of ['ECONNREFUSED', 'UND_ERR_SOCKET', undefined]) t.notOk(isTlsCode(code), String(code))
})

t.test('probeTlsAlert: the alert when the peer refuses us, undefined when it answers or just closes', async (t) => {
  const tls = await makeTlsFixture({ t })
  const serverOpts = { ca: readFileSync(tls.ca.cert), cert: readFileSync(tls.server.cert), key: readFileSync(tls.server.key) }
  const listen = async (server: import('node:net').Server): Promise<number> => {
    const sockets = new Set<import('node:net').Socket>()
    server.on('connection', (s: import('node:net').Socket) => sockets.add(s))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(resolve)
    }))
    return (server.address() as { port: number }).port
  }
  const at = (port: number): ReturnType<typeof resolveConnection> => resolveConnection({ address: `https://127.0.0.1:${port}` }, {})
  const client = { ca: readFileSync(tls.ca.cert, 'utf8'), servername: tls.serverName }

  const strict = createTlsServer({ ...serverOpts, requestCert: true, rejectUnauthorized: true }, (s) => s.end())
  t.match(await probeTlsAlert(at(await listen(strict)), client), /^ERR_SSL_/, 'no client certificate: the alert')

  const answering = createTlsServer(serverOpts, (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'))
  t.equal(await probeTlsAlert(at(await listen(answering)), client), undefined, 'an answer: not a TLS problem')

  const closing = createTcpServer((s) => s.destroy())
  const closed = await probeTlsAlert(at(await listen(closing)), client)
  t.not(closed, 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'a peer that hangs up sends no alert')

  const silent = createTcpServer(() => {})
  t.equal(await probeTlsAlert(at(await listen(silent)), client, 50), undefined, 'silence: gives up after the timeout')

  const sock = resolveConnection({ address: 'unix:///nonexistent/consul.sock', secure: true }, {})
  t.equal(await probeTlsAlert(sock, client), 'ENOENT', 'over a socket path')
})

t.test('a TLS agent that hangs up without an alert is an outage, not a TLS problem', async (t) => {
  const tls = await makeTlsFixture({ t })
  // The handshake succeeds, then the peer closes cleanly: undici sees "other side closed", and the probe
  // it triggers finds no alert either, so the socket error stands (FST_REG_CONSUL_UNREACHABLE).
  const sockets = new Set<import('node:net').Socket>()
  const server = createTlsServer({ cert: readFileSync(tls.server.cert), key: readFileSync(tls.server.key) }, (s) => s.end())
  server.on('connection', (s: import('node:net').Socket) => sockets.add(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const port = (server.address() as { port: number }).port
  const http = new ConsulHttp({ connection: resolveConnection({ address: `https://127.0.0.1:${port}`, ca: readFileSync(tls.ca.cert, 'utf8'), tlsServerName: tls.serverName }, {}) })
  t.teardown(() => http.close())
  await t.rejects(http.send({ path: '/v1/status/leader' }), { code: 'FST_REG_CONSUL_UNREACHABLE' })
})
