import t from 'tap'
import { get as plainGet } from 'node:http'
import { Agent } from 'node:https'
import type { Server } from 'node:tls'
import { connectLeaf, rotateConnectCa, startConsul } from '@reg/testkit'
import { ConnectCertificates, type CertificatesListener, type ConnectTls } from '../src/connect/certificates.js'
import { consulSerial } from '../src/connect/authorizer.js'
import { CONNECT_LOOP_DEFAULTS } from '../src/connect/defaults.js'
import { attachServerTls, handshakeRefusal, serverTlsOptions, type TlsSource } from '../src/connect/server-tls.js'
import { consulHttp, within } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { eventually } from './fixtures/consul-api.js'
import { foreignCa, issue, scratch } from './fixtures/connect-ca.js'
import { get, httpsServer } from './fixtures/connect-tls.js'

const TUNING = { ...CONNECT_LOOP_DEFAULTS, wait: 2000, backoff: { base: 20, cap: 200 } }

const agent = await startConsul({ t })
// Give the agent's CA a key we hold, before any leaf exists: every leaf below is signed by it, and the
// tests can sign what a real Connect CA never would (an expired certificate) and the roots still trust.
const held = await rotateConnectCa(agent)
const dir = await scratch(t)
const logs = recordingLogger()
const certs = new ConnectCertificates({ http: consulHttp(t, agent), log: logs.log, service: 'web', tuning: TUNING })
t.teardown(() => certs.close())
// Before the first certificate: the one thing a caller can get wrong in wiring (not awaiting ready).
const notReady = (() => {
  try {
    serverTlsOptions(certs)
  } catch (err) {
    return err as Error & { code?: string }
  }
})()
certs.start()
const first = await within('ready', certs.ready)

// The slow route holds its answer until release() — a request in flight across a rotation.
let release!: () => void
const { server, port } = await httpsServer(t, serverTlsOptions(certs), (req, res) => {
  const answer = (): void => { res.end(JSON.stringify({ caller: (req.socket as import('node:tls').TLSSocket).getPeerCertificate().subjectaltname })) }
  if (req.url === '/slow') release = answer
  else answer()
})
const detach = attachServerTls(server, certs, { log: logs.log })
t.teardown(detach)
const other = await connectLeaf(agent, 'other')
const client = { ca: [...first.ca], cert: other.cert, key: other.key, expect: { service: 'web', trustDomain: first.trustDomain } }

const refusals = (): Array<Record<string, unknown>> => logs.at('warn').filter((e) => /TLS handshake refused/.test(e.msg ?? '')).map((e) => e.obj)

t.test('serverTlsOptions before the first certificate: FST_REG_CONNECT_NOT_READY', async (t) => {
  t.equal(notReady?.code, 'FST_REG_CONNECT_NOT_READY')
})

t.test('the options: our leaf, the Connect roots, a client certificate required and verified, TLS 1.2+', async (t) => {
  t.match(serverTlsOptions(certs), { cert: first.cert, key: first.key, ca: first.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' })
})

t.test('a caller holding a leaf for another service from the same agent is served', async (t) => {
  const res = await get(port, client)
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.body).caller, `URI:${other.uri}`, 'the server sees the caller\'s Connect identity')
  // The caller's check of the server (Go's): a web leaf from the same CA, and the name must be "web".
  await t.rejects(get(port, { ...client, expect: { service: 'billing', trustDomain: first.trustDomain } }), /server is web, not billing/)
})

t.test('refused at the handshake, never reaching HTTP: one log line per address and reason', async (t) => {
  const foreign = await foreignCa(dir)
  const foreignLeaf = await issue(dir, foreign, 'foreign', { sans: [`URI.1 = ${other.uri}`] })
  const expired = await issue(dir, held, 'expired', { sans: [`URI.1 = ${other.uri}`], expired: true })
  // A chain of ~1 MB: OpenSSL stops reading at its 100 KB limit; the server must not fall over.
  const huge = other.cert + held.cert.repeat(1500)
  const cases: Array<[string, Parameters<typeof get>[1], string]> = [
    ['no certificate', { ca: client.ca }, 'no client certificate'],
    ['a certificate from another CA, with a valid-looking URI', { ca: client.ca, ...foreignLeaf }, 'client certificate not signed by the Connect CA'],
    ['an expired certificate from the Connect CA', { ca: client.ca, ...expired }, 'client certificate expired'],
    ['a huge chain', { ca: client.ca, cert: huge, key: other.key }, 'client certificate chain too large']
  ]
  for (const [name, tls, reason] of cases) {
    await t.rejects(get(port, tls), `${name}: refused`)
    const line = await eventually(async () => refusals().find((o) => o.reason === reason), `the log line for ${name}`)
    t.match(line, { reason }, `${name}: logged with its reason`)
    t.comment(`${name}: ${String(line.code)}`)
  }
  // Plain HTTP to the TLS port.
  await t.rejects(new Promise((resolve, reject) => plainGet({ host: '127.0.0.1', port }, resolve).on('error', reject)))
  await eventually(async () => refusals().find((o) => o.reason === 'not a TLS 1.2+ handshake (plain HTTP?)'), 'the plain-HTTP log line')
  const before = refusals().length
  await t.rejects(get(port, { ca: client.ca }))
  await t.rejects(get(port, { ca: client.ca }))
  t.equal(refusals().length, before, 'the same caller and reason again: not logged again')
  t.ok(server.listening, 'the server is still up')
  t.equal((await get(port, client)).status, 200, 'and still serves good callers')
})

t.test('CA rotation under load: no request dropped, in-flight ones finish, new handshakes get the new pair', async (t) => {
  const run = { stop: false }
  const tally = { keepAlive: { ok: 0, failed: 0 }, fresh: { ok: 0, failed: 0 }, oldRootsOnly: { ok: 0, failed: 0 } }
  const errors: string[] = []
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keepAlive.destroy())
  const loop = async (name: keyof typeof tally, send: () => Promise<{ status: number }>): Promise<void> => {
    while (!run.stop) {
      try {
        const res = await send()
        if (res.status === 200) tally[name].ok++
        else tally[name].failed++
      } catch (err) {
        tally[name].failed++
        errors.push(`${name}: ${(err as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  const loops = Promise.all([
    loop('keepAlive', () => get(port, client, { agent: keepAlive })),
    loop('fresh', () => get(port, client)),
    // A caller that still trusts only the root it started with: the agent appends the cross-signed new
    // root to the re-issued leaf, so it can verify our new certificate without knowing the new root.
    loop('oldRootsOnly', () => get(port, { ...client, ca: [held.cert] }))
  ])
  const swaps: Array<{ at: number, tls: ConnectTls }> = []
  const leafRotated = new Promise<ConnectTls>((resolve) => {
    certs.subscribe({
      rotate: (tls, change) => {
        swaps.push({ at: performance.now(), tls })
        if (change.leaf) resolve(tls)
      }
    })
  })
  const inFlight = get(port, client, { path: '/slow' })
  await eventually(async () => release !== undefined, 'the slow request to arrive')
  const started = performance.now()
  const next = await rotateConnectCa(agent)
  const rotated = await within('the re-issued leaf', leafRotated, 60_000)
  t.comment(`roots swapped after ${Math.round(swaps[0]!.at - started)} ms, leaf after ${Math.round(performance.now() - started)} ms`)
  release()
  const slow = await inFlight
  t.equal(slow.status, 200, 'the request in flight across both swaps finished')
  t.equal(consulSerial(slow.serverSerial), first.serial, 'on the connection it started on, with the old certificate')
  await new Promise((resolve) => setTimeout(resolve, 500))
  run.stop = true
  await loops
  t.comment(`requests during the rotation: ${JSON.stringify(tally)}`)
  for (const [name, counts] of Object.entries(tally)) {
    t.equal(counts.failed, 0, `${name}: nothing failed`)
    t.ok(counts.ok > 10, `${name}: requests kept flowing`)
  }
  t.same(errors, [])
  const after = await get(port, client)
  t.equal(consulSerial(after.serverSerial), rotated.serial, 'a new connection gets the re-issued certificate')
  t.ok(serverTlsOptions(certs).ca.includes(next.cert))
})

/** A source we control, to make setSecureContext refuse a pair: no agent issues one it would refuse. */
function fakeSource (tls: ConnectTls): TlsSource & { rotate (tls: ConnectTls): void } {
  const listeners = new Set<CertificatesListener>()
  return {
    service: 'web',
    current: tls,
    subscribe (l) {
      listeners.add(l)
      return () => { listeners.delete(l) }
    },
    rotate (next) { for (const l of listeners) l.rotate?.(next, { leaf: true, roots: false }) }
  }
}

t.test('a rotated pair the TLS layer refuses: the previous one keeps serving, one error line; detach stops following', async (t) => {
  const source = fakeSource(first)
  const own = recordingLogger()
  const { server: s, port: p } = await httpsServer(t, serverTlsOptions(source))
  const undo = attachServerTls(s as unknown as Server, source, { log: own.log })
  source.rotate({ ...first, key: other.key })
  t.equal(own.at('error').length, 1)
  t.match(own.at('error')[0]!.msg, /previous one keeps serving/)
  t.equal((await get(p, client)).status, 200, 'still serving with the first pair')
  const listening = s.listenerCount('tlsClientError')
  undo()
  t.equal(s.listenerCount('tlsClientError'), listening - 1, 'the refusal logger is removed')
  source.rotate({ ...first, key: other.key })
  t.equal(own.at('error').length, 1, 'detached: rotations are no longer followed')
})

t.test('handshakeRefusal names what OpenSSL says', async (t) => {
  const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
  // Node's verdict on the socket (authorizationError), when it checked a certificate and refused it.
  const verdicts: Array<[string, string]> = [
    ['CERT_HAS_EXPIRED', 'client certificate expired'],
    ['CERT_NOT_YET_VALID', 'client certificate not yet valid'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'client certificate not signed by the Connect CA'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'client certificate not signed by the Connect CA'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'client certificate not signed by the Connect CA'],
    ['CERT_REVOKED', 'client certificate refused (CERT_REVOKED)']
  ]
  for (const [code, reason] of verdicts) t.equal(handshakeRefusal(reset, code), reason, code)
  // OpenSSL's own errors, when no certificate was checked.
  const errors: Array<[string, string, string]> = [
    ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', '', 'no client certificate'],
    ['ERR_SSL_EXCESSIVE_MESSAGE_SIZE', '', 'client certificate chain too large'],
    ['', 'unexpected eof while reading', 'handshake failed'],
    ['ERR_SSL_HTTP_REQUEST', '', 'not a TLS 1.2+ handshake (plain HTTP?)'],
    ['ECONNRESET', 'socket hang up', 'handshake failed']
  ]
  for (const [code, message, reason] of errors) {
    const err = Object.assign(new Error(message), code === '' ? {} : { code })
    t.equal(handshakeRefusal(err), reason, code || message)
  }
})
