import t from 'tap'
import { Agent } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket, TlsOptions } from 'node:tls'
import Fastify from 'fastify'
import { connectLeaf, rotateConnectCa, startConsul } from '@reg/testkit'
import { ConnectAuthorizer, consulSerial, parseDecision, parseIntentions, type AuthorizerTuning } from '../src/connect/authorizer.js'
import { ConnectCertificates, type ConnectTls } from '../src/connect/certificates.js'
import { AUTHORIZER_DEFAULTS, CONNECT_LOOP_DEFAULTS } from '../src/connect/defaults.js'
import { RefusalLog } from '../src/connect/refusal-log.js'
import { attachServerTls, serverTlsOptions } from '../src/connect/server-tls.js'
import { parseServiceId } from '../src/connect/spiffe.js'
import { consulHttp, countingDispatcher, within } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { eventually } from './fixtures/consul-api.js'
import { issue, scratch, type Pem } from './fixtures/connect-ca.js'
import { get, httpsServer, type Answer, type ClientTls } from './fixtures/connect-tls.js'

interface Teardown { teardown (fn: () => unknown): void }

// A 2 s wait keeps the paused-agent test short: the intentions watch notices the outage when its query
// times out (wait + wait/16 + 2 s). Everything else is the defaults.
const TUNING: AuthorizerTuning = { ...AUTHORIZER_DEFAULTS, wait: 2000, backoff: { base: 20, cap: 200 } }

const agent = await startConsul({ t })
// A CA key we hold: the hostile certificates below are signed by the Connect CA itself, so they pass the
// TLS layer and reach the identity checks, which is the point.
const held = await rotateConnectCa(agent)
const dir = await scratch(t)
const certs = new ConnectCertificates({ http: consulHttp(t, agent), log: recordingLogger().log, service: 'b', tuning: { ...CONNECT_LOOP_DEFAULTS, wait: 2000 } })
t.teardown(() => certs.close())
certs.start()
const tls = await within('certificates', certs.ready)

interface Guarded {
  authorizer: ConnectAuthorizer
  logs: ReturnType<typeof recordingLogger>
  port: number
  /** authorize calls sent to the agent so far. */
  asked: () => number
}

/** A real HTTPS server for "b" whose every request passes authorizer.check(), as the adapter's hook will. */
async function guarded (t: Teardown, opts: { tuning?: Partial<AuthorizerTuning>, start?: boolean, server?: TlsOptions, trust?: { current: ConnectTls | undefined }, target?: string } = {}): Promise<Guarded> {
  const logs = recordingLogger()
  const counting = countingDispatcher(t)
  const authorizer = new ConnectAuthorizer({ http: consulHttp(t, agent, { dispatcher: counting.dispatcher }), log: logs.log, target: opts.target ?? 'b', trust: opts.trust ?? certs, tuning: { ...TUNING, ...opts.tuning } })
  t.teardown(() => authorizer.close())
  if (opts.start !== false) authorizer.start()
  const answer = (res: ServerResponse, status: number, code?: string): void => {
    res.statusCode = status
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ code }))
  }
  const options = { ...serverTlsOptions(certs), ...opts.server }
  const { server, port } = await httpsServer(t, options, (req: IncomingMessage, res: ServerResponse) => {
    const verdict = authorizer.check(req.socket as TLSSocket)
    if (verdict === undefined) return answer(res, 200)
    verdict.then(() => answer(res, 200), (err: Error & { statusCode: number, code: string }) => answer(res, err.statusCode, err.code))
  })
  t.teardown(attachServerTls(server, certs, { log: logs.log }))
  return { authorizer, logs, port, asked: () => counting.count('/v1/agent/connect/authorize') }
}

const callers = new Map<string, Pem & { uri: string }>()
async function as (service: string): Promise<ClientTls> {
  if (!callers.has(service)) callers.set(service, await connectLeaf(agent, service))
  const { cert, key } = callers.get(service)!
  return { ca: [...tls.ca], cert, key, expect: { service: 'b', trustDomain: tls.trustDomain } }
}
const uriOf = (service: string): string => callers.get(service)!.uri

const code = (res: Answer): string | undefined => (JSON.parse(res.body) as { code?: string }).code

async function intention (source: string, destination: string, action: 'allow' | 'deny'): Promise<string> {
  const res = await fetch(`${agent.url}/v1/connect/intentions`, { method: 'POST', body: JSON.stringify({ SourceName: source, DestinationName: destination, Action: action }) })
  if (!res.ok) throw new Error(`create intention: ${res.status} ${await res.text()}`)
  return (await res.json() as { ID: string }).ID
}

async function removeIntention (id: string): Promise<void> {
  const res = await fetch(`${agent.url}/v1/connect/intentions/${id}`, { method: 'DELETE' })
  if (!res.ok) throw new Error(`delete intention: ${res.status} ${await res.text()}`)
}

t.test('parseDecision, consulSerial and RefusalLog (pure)', async (t) => {
  t.same(parseDecision('{"Authorized":false,"Reason":"Matched intention: DENY"}'), { authorized: false, reason: 'Matched intention: DENY' })
  t.same(parseDecision('{"Authorized":true}'), { authorized: true, reason: '' })
  t.throws(() => parseDecision('<html>'), { code: 'FST_REG_CONNECT_BAD_RESPONSE' })
  t.throws(() => parseDecision('null'), { code: 'FST_REG_CONNECT_BAD_RESPONSE' })
  t.throws(() => parseDecision('{"Authorized":"yes"}'), { code: 'FST_REG_CONNECT_BAD_RESPONSE' })
  t.doesNotThrow(() => parseIntentions('[]'))
  t.throws(() => parseIntentions('{"nope"'), { code: 'FST_REG_CONNECT_BAD_RESPONSE' })
  t.throws(() => parseIntentions('{}'), { code: 'FST_REG_CONNECT_BAD_RESPONSE' })
  t.equal(consulSerial('0B'), '0b')
  t.equal(consulSerial('ABC'), '0a:bc')
  t.equal(consulSerial('3A4F'), '3a:4f')
  t.equal(consulSerial(undefined), '')

  let now = 0
  const log = new RefusalLog({ window: 1000, max: 2, now: () => now })
  const lines: string[] = []
  const once = (key: string): boolean => log.once(key, () => lines.push(key))
  t.ok(once('a'))
  t.notOk(once('a'), 'the same key within the window: silent')
  now = 1000
  t.ok(once('a'), 'after the window: news again')
  t.ok(once('b'))
  t.ok(once('c'), 'a third key evicts the oldest ("a")')
  t.ok(once('a'), 'so "a" is news again')
  log.forget('c')
  t.ok(once('c'), 'forget(): the next refusal is logged')
  t.same(lines, ['a', 'a', 'b', 'c', 'a', 'c'])
})

t.test('an allowed caller: served, and one authorize per caller, not per request or connection', async (t) => {
  const g = await guarded(t)
  await eventually(async () => g.authorizer.watchState === 'live', 'the intentions watch')
  const a = await as('a')
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keepAlive.destroy())
  for (let i = 0; i < 20; i++) t.equal((await get(g.port, a, { agent: keepAlive })).status, 200)
  for (let i = 0; i < 5; i++) t.equal((await get(g.port, a)).status, 200, 'a new connection')
  t.equal(g.asked(), 1, '25 requests over 6 connections, one authorize')
  const id = parseServiceId(uriOf('a'))
  if (!id.ok) throw new Error(id.reason)
  t.match(await g.authorizer.decide(id.value, '01'), { authorized: true, reason: /allowed by default/ }, 'decide(): the cached answer')
  t.equal(g.asked(), 1, 'decide() on a decided caller asks nothing')
  // Concurrent first requests from a new caller share one authorize.
  const e = await as('e')
  const burst = await Promise.all(Array.from({ length: 8 }, async () => await get(g.port, e)))
  t.same(burst.map((r) => r.status), Array(8).fill(200))
  t.equal(g.asked(), 2, 'eight concurrent first requests from "e", one authorize')
  t.equal(g.logs.at('warn').length, 0)
})

interface Flip { sentMs: number, ackedMs: number, requests: number }

/**
 * Sends back-to-back requests as `caller` over one keep-alive connection until one answers `status`;
 * returns when that happened, from the moment the intention write was sent and from its acknowledgement.
 */
async function until (port: number, caller: ClientTls, status: number, write: () => Promise<unknown>): Promise<Flip> {
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const sent = performance.now()
    let acked = Number.NaN
    const writing = write().then(() => { acked = performance.now() })
    let requests = 0
    for (;;) {
      const res = await get(port, caller, { agent: keepAlive })
      requests++
      if (res.status === status) {
        const at = performance.now()
        await writing
        return { sentMs: at - sent, ackedMs: Math.max(0, at - acked), requests }
      }
      if (performance.now() - sent > 5000) throw new Error(`no ${status} within 5 s`)
    }
  } finally {
    keepAlive.destroy()
  }
}

function summary (label: string, flips: Flip[]): string {
  const sorted = (k: 'sentMs' | 'ackedMs'): number[] => flips.map((f) => f[k]).sort((x, y) => x - y)
  const fmt = (xs: number[]): string => `median ${xs[Math.floor(xs.length / 2)]!.toFixed(1)} ms, max ${xs[xs.length - 1]!.toFixed(1)} ms`
  return `${label} (${flips.length} trials): from write sent ${fmt(sorted('sentMs'))}; from write acknowledged ${fmt(sorted('ackedMs'))}`
}

t.test('intentions: deny and allow reach live requests within 1 s (measured), denial logged once per caller', async (t) => {
  const g = await guarded(t)
  await eventually(async () => g.authorizer.watchState === 'live', 'the intentions watch')
  const a = await as('a')
  t.equal((await get(g.port, a)).status, 200)
  const denies: Flip[] = []
  const allows: Flip[] = []
  for (let trial = 0; trial < 10; trial++) {
    let id = ''
    denies.push(await until(g.port, a, 403, async () => { id = await intention('a', 'b', 'deny') }))
    allows.push(await until(g.port, a, 200, async () => await removeIntention(id)))
  }
  t.comment(summary('watch: deny', denies))
  t.comment(summary('watch: allow', allows))
  t.comment(`watch, per trial (ms from write sent): deny ${denies.map((f) => f.sentMs.toFixed(0)).join(' ')}; allow ${allows.map((f) => f.sentMs.toFixed(0)).join(' ')}`)
  for (const f of [...denies, ...allows]) t.ok(f.sentMs <= 1000, `took ${f.sentMs.toFixed(1)} ms (≤ 1 s)`)
  const denied = await get(g.port, a)
  t.equal(denied.status, 200)
  const id = await intention('a', 'b', 'deny')
  t.teardown(() => removeIntention(id))
  const refused = await eventually(async () => { const r = await get(g.port, a); return r.status === 403 ? r : undefined }, 'a 403')
  t.equal(code(refused), 'FST_REG_CONNECT_FORBIDDEN')
  const before = g.logs.at('warn').length
  for (let i = 0; i < 20; i++) t.equal((await get(g.port, a)).status, 403)
  t.equal(g.logs.at('warn').length, before, '20 more denied requests, no more log lines')
  const lines = g.logs.at('warn').filter((e) => /denied by intentions/.test(e.msg ?? ''))
  t.equal(lines.length, 11, 'one line per denial: 10 trials and this one')
  t.match(lines[0]!.obj, { caller: uriOf('a'), reason: /Matched intention: DENY/ })
  t.equal(g.logs.at('info').filter((e) => /allowed again/.test(e.msg ?? '')).length, 10)
  t.equal(code(await get(g.port, await as('e'))), undefined, 'another caller is not affected')
})

t.test('without the intentions watch a decision lives `ttl` (500 ms): still within 1 s (measured)', async (t) => {
  const g = await guarded(t, { start: false })
  t.equal(g.authorizer.watchState, 'starting')
  const f = await as('f')
  t.equal((await get(g.port, f)).status, 200)
  const denies: Flip[] = []
  const allows: Flip[] = []
  for (let trial = 0; trial < 5; trial++) {
    let id = ''
    denies.push(await until(g.port, f, 403, async () => { id = await intention('f', 'b', 'deny') }))
    allows.push(await until(g.port, f, 200, async () => await removeIntention(id)))
  }
  t.comment(summary('ttl only: deny', denies))
  t.comment(summary('ttl only: allow', allows))
  for (const flip of [...denies, ...allows]) t.ok(flip.sentMs <= 1000, `took ${flip.sentMs.toFixed(1)} ms (≤ 1 s)`)
})

t.test('identities the Connect CA signed but we refuse: 401, one line per address and reason, no authorize', async (t) => {
  const g = await guarded(t)
  const uri = (path: string, td = tls.trustDomain): string => `spiffe://${td}${path}`
  const cases: Array<[string, string[], RegExp]> = [
    ['two URIs', [`URI.1 = ${uri('/ns/default/dc/dc1/svc/a')}`, `URI.2 = ${uri('/ns/default/dc/dc1/svc/admin')}`], /2 URI SANs/],
    ['no URI SAN', ['DNS.1 = a.local'], /no URI SAN/],
    ['a non-SPIFFE URI', ['URI.1 = https://a.example/'], /not a spiffe/],
    ['another trust domain', [`URI.1 = ${uri('/ns/default/dc/dc1/svc/a', 'elsewhere.consul')}`], /is not ours/],
    ['an agent identity', [`URI.1 = ${uri('/agent/client/dc/dc1/id/node-1')}`], /not a Connect service identity/]
  ]
  for (const [name, sans, reason] of cases) {
    const pem = await issue(dir, held, name.replaceAll(' ', '-'), { sans })
    const client = { ca: [...tls.ca], ...pem, expect: { service: 'b', trustDomain: tls.trustDomain } }
    for (let i = 0; i < 3; i++) {
      const res = await get(g.port, client)
      t.equal(res.status, 401, `${name}: 401`)
      t.equal(code(res), 'FST_REG_CONNECT_UNAUTHENTICATED')
    }
    const lines = g.logs.at('warn').filter((e) => reason.test(String(e.obj.reason)))
    t.equal(lines.length, 1, `${name}: logged once for 3 connections`)
    t.match(lines[0]!.obj, { remoteAddress: '127.0.0.1' })
  }
  t.equal(g.asked(), 0, 'the agent was never asked about an identity we refuse')
})

t.test('a server that lets unverified callers through the TLS layer still refuses them (401)', async (t) => {
  const g = await guarded(t, { server: { rejectUnauthorized: false } })
  const res = await get(g.port, { ca: [...tls.ca] })
  t.equal(res.status, 401)
  t.equal(code(res), 'FST_REG_CONNECT_UNAUTHENTICATED')
  t.match(g.logs.at('warn')[0]?.obj, { reason: /not verified by the Connect CA \(UNABLE_TO_GET_ISSUER_CERT/ })
  const unasked = await guarded(t, { server: { requestCert: false, rejectUnauthorized: false } })
  t.equal(code(await get(unasked.port, await as('a'))), 'FST_REG_CONNECT_UNAUTHENTICATED', 'a server that never asks for a certificate')
  t.match(unasked.logs.at('warn')[0]?.obj, { reason: /the server did not ask for one/ })
  const early = await guarded(t, { trust: { current: undefined } })
  t.equal(code(await get(early.port, await as('a'))), 'FST_REG_CONNECT_UNAUTHENTICATED', 'no roots known yet: nobody is trusted')
  t.match(early.logs.at('warn')[0]?.obj, { reason: /roots are not known yet/ })
})

t.test('the agent refuses the question itself (here: an empty Target): coded failure logged once, callers get 503', async (t) => {
  const g = await guarded(t, { target: '' })
  for (let i = 0; i < 3; i++) t.equal(code(await get(g.port, await as('a'))), 'FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE')
  const warns = g.logs.at('warn').filter((e) => /authorize failed/.test(e.msg ?? ''))
  t.equal(warns.length, 1)
  t.match(warns[0]!.obj, { code: 'FST_REG_CONSUL_HTTP' })
})

t.test('at most maxCallers decisions are kept; the least recently asked is asked again', async (t) => {
  const g = await guarded(t, { tuning: { maxCallers: 2 } })
  await eventually(async () => g.authorizer.watchState === 'live', 'the intentions watch')
  for (const s of ['g1', 'g2', 'g3']) t.equal((await get(g.port, await as(s))).status, 200)
  t.equal(g.asked(), 3)
  t.equal((await get(g.port, await as('g3'))).status, 200)
  t.equal(g.asked(), 3, 'g3 is cached')
  t.equal((await get(g.port, await as('g1'))).status, 200)
  t.equal(g.asked(), 4, 'g1 was dropped for g3, so it is asked again')
})

t.test('Consul away: decided callers keep their decision, new ones get 503, all back after resume', async (t) => {
  const g = await guarded(t)
  await eventually(async () => g.authorizer.watchState === 'live', 'the intentions watch')
  const [a, c, d] = await Promise.all([as('a'), as('c'), as('d')])
  const id = await intention('c', 'b', 'deny')
  t.teardown(() => removeIntention(id))
  t.equal((await get(g.port, a)).status, 200)
  t.equal((await eventually(async () => { const r = await get(g.port, c); return r.status === 403 ? r : undefined }, 'c denied')).status, 403)
  await agent.pause()
  let resumed = false
  t.teardown(() => { if (!resumed) agent.resume() })
  await eventually(async () => g.authorizer.watchState === 'stale', 'the watch to notice', 15_000)
  t.match(g.logs.at('warn').find((e) => /intentions watch failed/.test(e.msg ?? ''))?.msg, /re-asked after 500 ms/)
  // The TTL has run out for a and c: each is asked again, the agent does not answer, the last decision stands.
  await new Promise((resolve) => setTimeout(resolve, TUNING.ttl))
  for (let i = 0; i < 5; i++) {
    t.equal((await get(g.port, a)).status, 200, 'a: still allowed')
    t.equal((await get(g.port, c)).status, 403, 'c: still denied')
  }
  const unknown = await get(g.port, d)
  t.equal(unknown.status, 503, 'd, never decided: refused while the agent cannot say')
  t.equal(code(unknown), 'FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE')
  t.equal(g.logs.at('warn').filter((e) => /authorize failed/.test(e.msg ?? '')).length, 1, 'one line for the outage')
  agent.resume()
  resumed = true
  const back = await eventually(async () => { const r = await get(g.port, d); return r.status === 200 ? r : undefined }, 'd allowed once the agent answers')
  t.equal(back.status, 200)
  t.ok(g.logs.at('info').some((e) => /answers authorize again/.test(e.msg ?? '')))
  await eventually(async () => g.authorizer.watchState === 'live', 'the watch back')
  t.ok(g.logs.at('info').some((e) => /intentions watch is back/.test(e.msg ?? '')))
  t.equal((await get(g.port, c)).status, 403, 'c: still denied, now from a fresh answer')
})

t.test('no agent at all: the watch warns once, a new caller gets 503 (at once while backing off), close is idempotent', async (t) => {
  const logs = recordingLogger()
  const authorizer = new ConnectAuthorizer({ http: consulHttp(t, { address: '127.0.0.1:1', url: 'http://127.0.0.1:1' }), log: logs.log, target: 'b', trust: certs, tuning: TUNING })
  authorizer.start()
  authorizer.start()
  await eventually(async () => logs.at('warn').length > 0 || undefined, 'the first failure warned')
  t.match(logs.at('warn')[0]!.msg, /intentions watch failed \(intentions:read\?\)/)
  t.equal(authorizer.watchState, 'starting')
  // Nobody to ask: a new caller is refused with 503, at once on the next request (backing off).
  const id = parseServiceId(`spiffe://${tls.trustDomain}/ns/default/dc/dc1/svc/a`)
  if (!id.ok) throw new Error(id.reason)
  await t.rejects(authorizer.decide(id.value, '01'), { code: 'FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE' })
  await t.rejects(authorizer.decide(id.value, '01'), { code: 'FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE' })
  await authorizer.close()
  await authorizer.close()
  t.equal(authorizer.watchState, 'closed')
  authorizer.start()
  t.equal(authorizer.watchState, 'closed', 'start() after close() does nothing')
})

t.test('wired into Fastify: Fastify({ https }), attachServerTls, an onRequest hook; a denial is a coded 403', async (t) => {
  const logs = recordingLogger()
  const authorizer = new ConnectAuthorizer({ http: consulHttp(t, agent), log: logs.log, target: 'b', trust: certs, tuning: TUNING })
  authorizer.start()
  const app = Fastify({ https: serverTlsOptions(certs) })
  t.teardown(() => app.close())
  t.teardown(() => authorizer.close())
  const detach = attachServerTls(app.server as unknown as import('node:tls').Server, certs, { log: logs.log })
  app.addHook('onClose', async () => detach())
  // Callback style: a cached "allowed" costs no promise.
  app.addHook('onRequest', (req, _reply, done) => {
    const verdict = authorizer.check(req.raw.socket as TLSSocket)
    if (verdict === undefined) done()
    else verdict.then(() => done(), done)
  })
  app.get('/', async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const h = await as('h')
  t.same(JSON.parse((await get(port, h)).body), { ok: true })
  const id = await intention('h', 'b', 'deny')
  t.teardown(() => removeIntention(id))
  const denied = await eventually(async () => { const r = await get(port, h); return r.status === 403 ? r : undefined }, 'a 403 from Fastify')
  t.match(JSON.parse(denied.body), { statusCode: 403, code: 'FST_REG_CONNECT_FORBIDDEN' })
  t.notOk(denied.body.includes(id) || /Matched|Precedence/.test(denied.body), 'the caller learns nothing of the intention')
  await t.rejects(get(port, { ca: [...tls.ca] }), 'no client certificate: refused by the TLS layer')
})
