import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import { Agent } from 'node:https'
import type { AddressInfo } from 'node:net'
import { connectLeaf, startConsul } from '@reg/testkit'
import { ConnectCertificates, type ConnectTls, type RotationChange } from '../src/connect/certificates.js'
import { CONNECT_LOOP_DEFAULTS } from '../src/connect/defaults.js'
import { attachServerTls, serverTlsOptions } from '../src/connect/server-tls.js'
import { consulHttp, within } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { get, httpsServer } from './fixtures/connect-tls.js'

// #24: "leaf renewal before expiry is tested with a short TTL if 1.8.7 allows one; otherwise with a
// clock". It does not: `PUT /v1/connect/ca/configuration` with `LeafCertTTL: "2m"` answers "leaf cert
// TTL must be greater or equal than 1h0m0s", and the agent renews a leaf only as it nears expiry. So
// the agent's clock is played by a relay in front of the real agent: everything passes through, until
// `renew()` answers the leaf query with what the agent renews to — a new leaf for the same service
// from the same CA (a real one: without ACLs the agent's leaf cache is per token, so asking with
// another token makes the agent issue a second leaf), with a higher index, as the agent's blocking
// query would at renewal. The roots never change: this is a renewal, not a CA rotation (that one is
// connect-certificates.test.ts and connect-server-tls.test.ts).

const TUNING = { ...CONNECT_LOOP_DEFAULTS, wait: 2000, backoff: { base: 20, cap: 200 } }
const LEAF_PATH = '/v1/agent/connect/ca/leaf/web'

const agent = await startConsul({ t })

interface Relay { address: string, url: string, renew (): Promise<string> }

async function relay (): Promise<Relay> {
  let renewed: { body: string, index: number } | undefined
  const waiting = new Set<ServerResponse>()
  const answer = (res: ServerResponse, body: string, index: number): void => {
    waiting.delete(res)
    if (res.headersSent || res.destroyed) return
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(index) })
    res.end(body)
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://relay')
    if (url.pathname === LEAF_PATH && renewed !== undefined && Number(url.searchParams.get('index') ?? 0) < renewed.index) {
      answer(res, renewed.body, renewed.index)
      return
    }
    if (url.pathname === LEAF_PATH) waiting.add(res)
    fetch(`${agent.url}${req.url!}`, { headers: { 'x-consul-token': String(req.headers['x-consul-token'] ?? '') } }).then(async (upstream) => {
      const body = await upstream.text()
      if (url.pathname === LEAF_PATH && renewed !== undefined) answer(res, renewed.body, renewed.index)
      else answer(res, body, Number(upstream.headers.get('x-consul-index') ?? 1))
    }, () => { res.destroy() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  const { port } = server.address() as AddressInfo
  return {
    address: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    async renew () {
      const res = await fetch(`${agent.url}${LEAF_PATH}`, { headers: { 'x-consul-token': 'renewal' } })
      const body = await res.text()
      renewed = { body, index: Number(res.headers.get('x-consul-index')) + 1000 }
      // The blocking query parked at the agent returns now, as the agent's would at renewal.
      for (const waiter of [...waiting]) answer(waiter, renewed.body, renewed.index)
      return (JSON.parse(body) as { CertPEM: string }).CertPEM
    }
  }
}

const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber

t.test('a renewed leaf (same CA, new serial) reaches new connections at once; an open connection carries on', async (t) => {
  const front = await relay()
  const logs = recordingLogger()
  const certs = new ConnectCertificates({ http: consulHttp(t, front), log: logs.log, service: 'web', tuning: TUNING })
  t.teardown(() => certs.close())
  certs.start()
  const first = await within('ready', certs.ready)
  const { server, port } = await httpsServer(t, serverTlsOptions(certs), (_req, res) => { res.end('ok') })
  t.teardown(attachServerTls(server, certs, { log: logs.log }))
  const caller = await connectLeaf(agent, 'caller')
  const client = { ca: [...first.ca], cert: caller.cert, key: caller.key, expect: { service: 'web', trustDomain: first.trustDomain } }
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keepAlive.destroy())

  const before = await get(port, client, { agent: keepAlive })
  t.equal(before.serverSerial, serialOf(first.cert), 'negative control: before the renewal the server presents the first leaf')
  t.equal((await get(port, client)).serverSerial, serialOf(first.cert), 'on a new connection too')

  const rotated = new Promise<{ tls: ConnectTls, change: RotationChange }>((resolve) => {
    const off = certs.subscribe({ rotate: (tls, change) => { off(); resolve({ tls, change }) } })
  })
  const renewedPem = await front.renew()
  const { tls, change } = await within('the renewal', rotated)
  t.not(serialOf(renewedPem), serialOf(first.cert), 'the agent issued a second leaf for the same service')
  t.same(change, { leaf: true, roots: false }, 'a leaf change only: the roots did not move')
  t.equal(tls.cert, renewedPem)
  t.equal(tls.activeRootId, first.activeRootId)
  t.same(tls.ca, first.ca, 'the same trust anchors')

  t.equal((await get(port, client)).serverSerial, serialOf(renewedPem), 'a new connection gets the renewed leaf')
  const carried = await get(port, client, { agent: keepAlive })
  t.equal(carried.status, 200, 'the connection opened before the renewal still serves (nothing dropped)')
  t.equal(carried.serverSerial, serialOf(first.cert), 'on the certificate it was opened with')
  t.equal(certs.state, 'live')
})
