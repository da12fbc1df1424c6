import t from 'tap'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { connectLeaf, connectRoots, rotateConnectCa, startConsul } from '@reg/testkit'
import { parseLeaf, parseRoots } from '../src/connect/ca-answers.js'
import { ConnectCertificates, type CertificatesState, type ConnectTls, type RotationChange } from '../src/connect/certificates.js'
import { CONNECT_LOOP_DEFAULTS } from '../src/connect/defaults.js'
import { consulHttp, within } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'

interface Teardown { teardown (fn: () => unknown): void }

// Short waits keep the outage test short: a paused agent is noticed when a query's timeout runs out.
const TUNING = { ...CONNECT_LOOP_DEFAULTS, wait: 2000, backoff: { base: 20, cap: 200 } }

const agent = await startConsul({ t })

function keeper (t: Teardown, service: string): { certs: ConnectCertificates, logs: ReturnType<typeof recordingLogger> } {
  const logs = recordingLogger()
  const certs = new ConnectCertificates({ http: consulHttp(t, agent), log: logs.log, service, tuning: TUNING })
  t.teardown(() => certs.close())
  certs.start()
  return { certs, logs }
}

function untilState (certs: ConnectCertificates, state: CertificatesState, ms = 20_000): Promise<void> {
  if (certs.state === state) return Promise.resolve()
  let off!: () => void
  return within(`state ${state}`, new Promise<void>((resolve) => {
    off = certs.subscribe({ state: (s) => { if (s === state) resolve() } })
  }), ms).finally(() => off())
}

t.test('parseLeaf and parseRoots refuse answers that must never reach setSecureContext', async (t) => {
  const res = await fetch(`${agent.url}/v1/agent/connect/ca/leaf/web`)
  const good = await res.json() as Record<string, unknown>
  const other = await connectLeaf(agent, 'other')
  const ok = parseLeaf(JSON.stringify(good), 'web')
  t.match(ok, { serial: good.SerialNumber, serviceURI: good.ServiceURI, identity: { service: 'web', datacenter: 'dc1' } })
  const leafCases: Array<[string, string, RegExp]> = [
    ['not JSON', 'nope', /not JSON/],
    ['an array', '[]', /not an object/],
    ['null', 'null', /not an object/],
    ['no CertPEM', JSON.stringify({ ...good, CertPEM: undefined }), /CertPEM is not a non-empty string/],
    ['CertPEM not PEM', JSON.stringify({ ...good, CertPEM: 'garbage' }), /CertPEM is not a PEM certificate/],
    ['PrivateKeyPEM not a key', JSON.stringify({ ...good, PrivateKeyPEM: 'garbage' }), /not a private key/],
    ['another certificate\'s key', JSON.stringify({ ...good, PrivateKeyPEM: other.key }), /does not match CertPEM/],
    ['ServiceURI not SPIFFE', JSON.stringify({ ...good, ServiceURI: 'https://web/' }), /ServiceURI: not a spiffe/],
    ['issued to another service', JSON.stringify({ ...good, CertPEM: other.cert, PrivateKeyPEM: other.key, ServiceURI: other.uri }), /issued to service "other"/],
    ['ServiceURI not the certificate\'s', JSON.stringify({ ...good, ServiceURI: String(good.ServiceURI).replace('/dc/dc1/', '/dc/dc2/') }), /URI SAN is not ServiceURI/],
    ['ValidBefore not a time', JSON.stringify({ ...good, ValidBefore: 'soon' }), /ValidBefore is not a time/],
    ['no SerialNumber', JSON.stringify({ ...good, SerialNumber: '' }), /SerialNumber is not a non-empty string/]
  ]
  for (const [name, text, message] of leafCases) {
    t.throws(() => parseLeaf(text, 'web'), { code: 'FST_REG_CONNECT_BAD_RESPONSE', message }, `leaf: ${name}`)
  }

  const r = await connectRoots(agent)
  t.match(parseRoots(JSON.stringify(r)), { trustDomain: r.TrustDomain, activeRootId: r.ActiveRootID, ids: [r.ActiveRootID], certs: [r.Roots[0]!.RootCert] })
  const rootCases: Array<[string, unknown, RegExp]> = [
    ['no TrustDomain', { ...r, TrustDomain: 7 }, /TrustDomain/],
    ['Roots not an array', { ...r, Roots: {} }, /Roots is not a non-empty array/],
    ['no roots', { ...r, Roots: [] }, /Roots is not a non-empty array/],
    ['a root that is null', { ...r, Roots: [null] }, /a root is not an object/],
    ['RootCert not PEM', { ...r, Roots: [{ ...r.Roots[0], RootCert: 'x' }] }, /RootCert is not a PEM certificate/],
    ['ActiveRootID not listed', { ...r, ActiveRootID: 'aa:bb' }, /ActiveRootID is not among Roots/]
  ]
  for (const [name, body, message] of rootCases) {
    t.throws(() => parseRoots(JSON.stringify(body)), { code: 'FST_REG_CONNECT_BAD_RESPONSE', message }, `roots: ${name}`)
  }
})

t.test('first fetch: the leaf and the roots as one snapshot, and ready', async (t) => {
  const { certs, logs } = keeper(t, 'web')
  certs.start() // idempotent
  t.equal(certs.current, undefined, 'nothing before the first answers')
  const tls = await within('ready', certs.ready)
  t.equal(certs.current, tls)
  t.equal(certs.state, 'live')
  t.ok(Object.isFrozen(tls), 'a snapshot is immutable: a rotation swaps the whole object')
  const agentRoots = await connectRoots(agent)
  t.equal(tls.trustDomain, agentRoots.TrustDomain)
  t.equal(tls.activeRootId, agentRoots.ActiveRootID)
  t.same(tls.ca, agentRoots.Roots.map((r) => r.RootCert))
  t.equal(tls.serviceURI, `spiffe://${agentRoots.TrustDomain}/ns/default/dc/dc1/svc/web`)
  t.equal(tls.identity.service, 'web')
  t.equal(tls.serial, (await connectLeaf(agent, 'web')).serial, 'the agent\'s cached leaf, not a new one')
  const x = new X509Certificate(tls.cert)
  t.ok(x.checkPrivateKey(createPrivateKey(tls.key)))
  t.ok(x.verify(new X509Certificate(tls.ca[0]!).publicKey), 'signed by the active root')
  t.equal(tls.validBefore - tls.validAfter, 72 * 3600_000, '72 h, Consul\'s default LeafCertTTL')
  t.equal(logs.at('info').filter((e) => e.msg === 'connect certificates ready').length, 1)
  t.equal(logs.at('warn').length, 0)
})

t.test('answers that cannot be used: never ready, one warning per endpoint, then quiet; close rejects ready', async (t) => {
  // Both come from the real agent: "a/b" is a 500 ("SPIFFE ID is not in the expected format"), and for
  // "bad name" it issues `…/svc/bad%20name`, a percent-escape our identity rules refuse.
  for (const [service, code] of [['a/b', 'FST_REG_CONSUL_HTTP'], ['bad name', 'FST_REG_CONNECT_BAD_RESPONSE']] as const) {
    const { certs, logs } = keeper(t, service)
    await within('a few failed tries', (async () => {
      while (logs.at('debug').length < 2) await new Promise((resolve) => setTimeout(resolve, 20))
    })())
    t.equal(certs.state, 'starting', service)
    t.equal(certs.current, undefined)
    const warns = logs.at('warn')
    t.equal(warns.length, 1, `${service}: one warning, the rest at debug`)
    t.match(warns[0]!.obj, { code, part: 'leaf' })
    await certs.close()
    await t.rejects(certs.ready, { code: 'FST_REG_CONNECT_CLOSED' })
    t.equal(certs.state, 'closed')
    await certs.close()
    certs.start()
    t.equal(certs.state, 'closed', 'start() after close() does nothing')
  }
})

t.test('fail static: a paused agent keeps the last good pair, stale, and live again after resume', async (t) => {
  const { certs, logs } = keeper(t, 'web')
  const tls = await within('ready', certs.ready)
  await agent.pause()
  let resumed = false
  t.teardown(() => { if (!resumed) agent.resume() })
  // A query on a frozen agent ends at its timeout: wait + wait/16 + 2 s.
  await untilState(certs, 'stale')
  t.equal(certs.current, tls, 'the same snapshot keeps serving')
  t.equal(logs.at('warn').filter((e) => /serving the last good/.test(e.msg ?? '')).length, 1, 'one warning for the outage')
  agent.resume()
  resumed = true
  await untilState(certs, 'live')
  t.equal(certs.current, tls, 'nothing changed, nothing rotated')
  t.equal(logs.at('info').filter((e) => /answers again/.test(e.msg ?? '')).length, 1)
})

t.test('a CA rotation reaches us: roots at once, then the re-issued leaf (1.8 spreads it over 30 s)', async (t) => {
  const { certs, logs } = keeper(t, 'web')
  const before = await within('ready', certs.ready)
  const seen: Array<{ tls: ConnectTls, change: RotationChange }> = []
  const unsubscribeThrower = certs.subscribe({ rotate: () => { throw new Error('a consumer bug') } })
  const leafRotated = new Promise<ConnectTls>((resolve) => {
    certs.subscribe({
      rotate: (tls, change) => {
        seen.push({ tls, change })
        if (change.leaf) resolve(tls)
      }
    })
  })
  const started = performance.now()
  const held = await rotateConnectCa(agent)
  const after = await within('the re-issued leaf', leafRotated, 60_000)
  const leafMs = Math.round(performance.now() - started)
  t.comment(`leaf re-issued ${leafMs} ms after the CA configuration was changed`)
  // Each answer is its own rotation. The roots arrive in milliseconds; the agent re-issues the leaf after
  // a random 0-30 s, so the roots nearly always come first (the test does not depend on it).
  t.ok(seen.every((s) => s.change.roots !== s.change.leaf), 'each rotation is one part')
  const rootsRotation = seen.find((s) => s.change.roots)
  if (rootsRotation === undefined) throw new Error('no rotation for the roots')
  t.ok(rootsRotation.tls.ca.includes(held.cert), 'the new root is trusted from its rotation on')
  t.ok(rootsRotation.tls.ca.includes(before.ca[0]!), 'the old root stays trusted: peers still hold leaves it signed')
  if (seen[0] === rootsRotation) t.equal(rootsRotation.tls.cert, before.cert, 'our leaf is unchanged until the agent re-issues it')
  t.not(after.serial, before.serial)
  t.equal(after.activeRootId, held.id)
  t.ok(new X509Certificate(after.cert).verify(new X509Certificate(held.cert).publicKey), 'the new leaf is signed by the new root')
  t.equal(certs.current, after)
  t.equal(certs.state, 'live')
  t.ok(logs.at('info').filter((e) => e.msg === 'connect certificates rotated').length >= 2)
  t.ok(logs.at('error').some((e) => e.msg === 'connect certificates listener threw'), 'a throwing listener is logged')
  unsubscribeThrower()
})
