import { X509Certificate } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import t from 'tap'
import { makeTlsFixture, startHttpsConsul, startUnixConsul } from '../src/index.js'

const cert = (path: string): X509Certificate => new X509Certificate(readFileSync(path))

/** Status of GET /v1/status/leader over HTTPS with `opts`, or the error's code. */
async function leader (port: number, opts: { ca?: string, cert?: string, key?: string, servername?: string }): Promise<number | string> {
  return await new Promise((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/v1/status/leader', ...opts }, (res) => {
      res.resume()
      resolve(res.statusCode!)
    })
    req.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message))
    req.end()
  })
}

t.test('makeTlsFixture: a CA, an agent and a client certificate, an unrelated CA; expired on request', async (t) => {
  const tls = await makeTlsFixture({ t })
  const ca = cert(tls.ca.cert)
  t.ok(ca.ca, 'the CA is a CA')
  t.ok(cert(tls.server.cert).verify(ca.publicKey), 'the agent certificate is signed by the CA')
  t.ok(cert(tls.client.cert).verify(ca.publicKey), 'the client certificate is signed by the CA')
  t.notOk(cert(tls.client.cert).verify(cert(tls.otherCa.cert).publicKey), 'not by the other CA')
  t.match(cert(tls.server.cert).subjectAltName, /DNS:server\.dc1\.consul/)
  t.notMatch(cert(tls.server.cert).subjectAltName, /IP/, 'no IP: callers of 127.0.0.1 need the server name')
  t.equal(tls.serverName, 'server.dc1.consul')
  const expired = await tls.ca.issue('old', { expired: true })
  t.ok(new Date(cert(expired.cert).validTo) < new Date(), 'expired')
  await tls.remove()
  t.notOk(existsSync(tls.dir))
  await tls.remove()
})

t.test('startHttpsConsul: mutual TLS on the HTTPS port, plain HTTP kept for the test', async (t) => {
  const tls = await makeTlsFixture({ t })
  const agent = await startHttpsConsul({ t, tls })
  t.equal(agent.httpsAddress, `127.0.0.1:${agent.httpsPort}`)
  const ca = readFileSync(tls.ca.cert, 'utf8')
  const client = { ca, cert: readFileSync(tls.client.cert, 'utf8'), key: readFileSync(tls.client.key, 'utf8'), servername: tls.serverName }
  t.equal(await leader(agent.httpsPort, client), 200, 'with the client certificate')
  t.not(await leader(agent.httpsPort, { ca, servername: tls.serverName }), 200, 'without it: refused (verify_incoming_https)')
  t.equal((await fetch(`${agent.url}/v1/status/leader`)).status, 200, 'plain HTTP still answers the test')

  const open = await startHttpsConsul({ t, tls, verifyIncoming: false })
  t.equal(await leader(open.httpsPort, { ca, servername: tls.serverName }), 200, 'verifyIncoming: false needs no client certificate')
})

t.test('startUnixConsul: the API on a unix socket; stop() removes it', async (t) => {
  const agent = await startUnixConsul({ t })
  const status = await new Promise<number>((resolve, reject) => {
    httpRequest({ socketPath: agent.socketPath, path: '/v1/status/leader' }, (res) => {
      res.resume()
      resolve(res.statusCode!)
    }).on('error', reject).end()
  })
  t.equal(status, 200)
  await agent.stop()
  t.notOk(existsSync(agent.socketPath))
})
