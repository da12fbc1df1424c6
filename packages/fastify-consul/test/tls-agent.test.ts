import { copyFile, mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import { makeTlsFixture, startHttpsConsul } from '@reg/testkit'
import t from 'tap'
import { buildApp, stateBecomes } from './fixtures/app.js'
import { healthService } from './fixtures/consul-api.js'
import { failedAttemptCode, rotate, serving, withEnv } from './fixtures/tls.js'

// One real agent with an HTTPS port and verify_incoming_https, and certificates made by openssl for
// this run. The agent's plain HTTP port is only for reading what Consul believes.

const tls = await makeTlsFixture({ t })
const agent = await startHttpsConsul({ t, tls })
const retry = { base: 50, cap: 300 }
/** Everything mTLS needs, as options; tests take one thing away at a time. */
const mtls = { address: `https://${agent.httpsAddress}`, caFile: tls.ca.cert, certFile: tls.client.cert, keyFile: tls.client.key, tlsServerName: tls.serverName }

t.test('mTLS from CONSUL_CLIENT_CERT/KEY, CONSUL_CACERT and CONSUL_TLS_SERVER_NAME: registered and discovered', async (t) => {
  withEnv(t, {
    CONSUL_HTTP_ADDR: `https://${agent.httpsAddress}`,
    CONSUL_CACERT: tls.ca.cert,
    CONSUL_CLIENT_CERT: tls.client.cert,
    CONSUL_CLIENT_KEY: tls.client.key,
    CONSUL_TLS_SERVER_NAME: tls.serverName
  })
  const { app } = await buildApp(t, { service: { name: 'mtls-env', id: 'mtls-env-1' }, failFast: true })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  const entries = await healthService(agent.url, 'mtls-env', { passing: true })
  t.same(entries.map((e) => e.Service.ID), ['mtls-env-1'], 'Consul has it, passing')

  const watch = app.consul.discover('mtls-env')
  await watch.ready
  t.same(watch.instances.map((i) => i.id), ['mtls-env-1'], 'discovered over the same mTLS connection')
  t.equal(watch.state, 'live')

  const self = await app.consul.client.agent.self() as { Config: { NodeName: string } }
  t.equal(self.Config.NodeName, agent.nodeName, 'the `consul` npm client got the same CA, certificate and server name')
})

t.test('a missing client certificate, a wrong CA, a wrong server name: coded, serving, not registered', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['no client certificate', { ...mtls, certFile: undefined, keyFile: undefined }, 'FST_REG_CONSUL_TLS_CLIENT_CERT_REQUIRED'],
    ['the wrong CA', { ...mtls, caFile: tls.otherCa.cert }, 'FST_REG_CONSUL_TLS_UNTRUSTED'],
    ['no server name (the certificate names no IP)', { ...mtls, tlsServerName: undefined }, 'FST_REG_CONSUL_TLS_SERVER_NAME'],
    ['the wrong server name', { ...mtls, tlsServerName: 'client.dc1.consul' }, 'FST_REG_CONSUL_TLS_SERVER_NAME'],
    ['https to the plain HTTP port', { ...mtls, address: `https://${agent.address}` }, 'FST_REG_CONSUL_TLS_NOT_OFFERED'],
    ['plain HTTP to the HTTPS port', { address: agent.httpsAddress }, 'FST_REG_CONSUL_TLS_REQUIRED']
  ]
  for (const [what, consul, code] of cases) {
    await t.test(what, async (t) => {
      const id = `bad-${code.toLowerCase()}-${cases.findIndex((c) => c[0] === what)}`
      const { app, logs } = await buildApp(t, { service: { name: 'mtls-bad', id }, retry, consul })
      await app.listen({ host: '127.0.0.1', port: 0 })
      t.equal(await failedAttemptCode(logs), code)
      t.equal(await serving(app), 200, 'the app keeps serving while it retries')
      t.equal(app.consul.state, 'registering', 'still retrying, as for any outage')
      t.notOk((await healthService(agent.url, 'mtls-bad')).some((e) => e.Service.ID === id), 'not registered')

      const { app: strict } = await buildApp(t, { service: { name: 'mtls-bad' }, failFast: true, consul })
      await t.rejects(async () => { await strict.ready() }, { code }, 'with failFast, ready() rejects with the same code')
    })
  }
})

t.test('client certificates the agent rejects: signed by another CA, or expired', async (t) => {
  const foreign = await tls.otherCa.issue('foreign-client')
  const expired = await tls.ca.issue('expired-client', { expired: true })
  for (const [what, pair, code] of [['another CA', foreign, 'FST_REG_CONSUL_TLS_CLIENT_CERT_REJECTED'], ['expired', expired, 'FST_REG_CONSUL_TLS_CERT_EXPIRED']] as const) {
    const { app, logs } = await buildApp(t, { service: { name: 'mtls-rejected', id: `rejected-${what.replace(' ', '-')}` }, retry, consul: { ...mtls, certFile: pair.cert, keyFile: pair.key } })
    await app.listen({ host: '127.0.0.1', port: 0 })
    t.equal(await failedAttemptCode(logs), code, what)
    t.equal(await serving(app), 200)
    t.notOk((await healthService(agent.url, 'mtls-rejected')).length, 'not registered')
    await app.close()
  }
})

t.test('an agent whose own certificate expired', async (t) => {
  const stale = await tls.ca.issue('expired-server', { expired: true, dnsNames: [tls.serverName] })
  const old = await startHttpsConsul({ t, tls, server: stale })
  const { app } = await buildApp(t, { service: { name: 'x' }, failFast: true, consul: { ...mtls, address: `https://${old.httpsAddress}` } })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_REG_CONSUL_TLS_CERT_EXPIRED' })
})

t.test('rotation: a client certificate replaced on disk is used by the next attempt, without a restart', async (t) => {
  const dir = await mkdtemp(join(tls.dir, 'rotate-'))
  const live = { cert: join(dir, 'client.pem'), key: join(dir, 'client-key.pem') }
  // Before: a certificate the agent does not accept (as if Vault had not issued the new one yet).
  await rotate(await tls.otherCa.issue('rotate-old'), live)
  const { app, logs } = await buildApp(t, { service: { name: 'rotated', id: 'rotated-1' }, retry, consul: { ...mtls, certFile: live.cert, keyFile: live.key } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(await failedAttemptCode(logs), 'FST_REG_CONSUL_TLS_CLIENT_CERT_REJECTED', 'the old certificate is refused')

  await rotate(tls.client, live)
  await stateBecomes(app, 'registered')
  t.same((await healthService(agent.url, 'rotated')).map((e) => e.Service.ID), ['rotated-1'], 'registered with the new certificate')
})

t.test('rotation: a CA file replaced on disk is trusted by the next attempt', async (t) => {
  const dir = await mkdtemp(join(tls.dir, 'ca-'))
  const caFile = join(dir, 'ca.pem')
  await copyFile(tls.otherCa.cert, caFile)
  const { app, logs } = await buildApp(t, { service: { name: 'ca-rotated', id: 'ca-rotated-1' }, retry, consul: { ...mtls, caFile } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(await failedAttemptCode(logs), 'FST_REG_CONSUL_TLS_UNTRUSTED')
  await copyFile(tls.ca.cert, caFile)
  await stateBecomes(app, 'registered')
  t.equal((await healthService(agent.url, 'ca-rotated')).length, 1)
})

t.test('CONSUL_CAPATH: a folder of PEMs, one of them the right CA', async (t) => {
  const dir = await mkdtemp(join(tls.dir, 'capath-'))
  await copyFile(tls.otherCa.cert, join(dir, 'a-unrelated.pem'))
  await copyFile(tls.ca.cert, join(dir, 'b-consul.pem'))
  withEnv(t, { CONSUL_CAPATH: dir })
  const { app } = await buildApp(t, { service: { name: 'capath', id: 'capath-1' }, failFast: true, consul: { ...mtls, caFile: undefined } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  t.equal((await healthService(agent.url, 'capath')).length, 1)
})

t.test('CONSUL_HTTP_SSL_VERIFY=false skips the CA and name checks, as in the CLI', async (t) => {
  withEnv(t, { CONSUL_HTTP_SSL_VERIFY: 'false' })
  const { app } = await buildApp(t, { service: { name: 'noverify', id: 'noverify-1' }, failFast: true, consul: { ...mtls, caFile: tls.otherCa.cert, tlsServerName: undefined } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  t.equal((await healthService(agent.url, 'noverify')).length, 1)
})
