// Paths of the registrar that a real agent reaches only by chance (#29): stopping while a failed
// registration waits to retry, and the self-heal watch recovering from an odd answer. Consul's side is a
// scripted server; the registrar, its HTTP client and its timers are the real ones.
import t from 'tap'
import { Registrar } from '../src/registration/registrar.js'
import type { ServiceRegistration } from '../src/registration/definition.js'
import { advertisedStatus } from '../src/registration/health-contribution.js'
import { consulHttp, within } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { faultServer } from './fixtures/discovery-fault-server.js'

const registration: ServiceRegistration = { id: 'web-1', name: 'web', address: '127.0.0.1', port: 1, tags: [], meta: {}, weights: { passing: 10, warning: 1 }, check: undefined }
const body = { ID: 'web-1', Name: 'web', Address: '127.0.0.1', Port: 1 } as Parameters<Registrar['register']>[0]

t.test('advertisedStatus: our own "not registered" warning is not sent to Consul, anything else is', async (t) => {
  const notRegistered = { status: 'warning' as const }
  t.equal(advertisedStatus({ status: 'passing', checks: {} }), 'passing')
  t.equal(advertisedStatus({ status: 'critical', checks: { 'consul registration': notRegistered, db: { status: 'critical' } } }), 'critical')
  t.equal(advertisedStatus({ status: 'warning', checks: { 'consul registration': notRegistered, db: { status: 'passing' } } }), 'passing', 'only ours warns: passing')
  t.equal(advertisedStatus({ status: 'warning', checks: { 'consul registration': notRegistered, db: { status: 'warning' } } }), 'warning', 'another check warns too')
  t.equal(advertisedStatus({ status: 'warning', checks: { 'consul registration': notRegistered }, pressure: ['eventLoopDelay'] }), 'warning', 'under pressure')
  t.equal(advertisedStatus({ status: 'warning', checks: { 'consul registration': notRegistered, cache: { status: 'warning', starting: true } } }), 'passing', 'a check in its start period does not count')
  t.equal(advertisedStatus({ status: 'warning', checks: { db: { status: 'warning' } } }), 'warning', 'a warning that is not ours')
})

t.test('stopped while a failed registration waits to retry: the loop ends, no try after it', async (t) => {
  const server = await faultServer(t, () => ({ status: 500, body: 'rpc error: no leader' }))
  const log = recordingLogger()
  // random 0.5: the second wait is 1 s; closing 200 ms after the second try lands inside it.
  const registrar = new Registrar({ http: consulHttp(t, { address: server.address, url: server.url }), log: log.log, retry: { base: 1000, cap: 2000 }, selfHeal: false, deregisterTimeout: 1000, random: () => 0.5 })
  const loop = registrar.register(body, registration, undefined, false)
  await within('two failed tries', server.received(2))
  await new Promise((resolve) => setTimeout(resolve, 200))
  registrar.close()
  await within('the loop to end', loop)
  const tries = server.requests.length
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal(server.requests.length, tries, 'nothing sent after close')
  t.not(registrar.state, 'registered')
})

t.test('self-heal watch: an odd answer is logged once, and its end is logged once', async (t) => {
  let watchReads = 0
  const server = await faultServer(t, (_n, url) => {
    if (url.pathname === '/v1/agent/service/register') return { body: '' }
    if (url.pathname !== '/v1/agent/service/web-1') return { status: 404, body: 'unexpected' }
    watchReads++
    if (watchReads <= 2) return { status: 500, body: 'ACL not found' }
    if (watchReads === 3) return { body: JSON.stringify({ ID: 'web-1', Service: 'web' }) }
    return { hold: true }
  })
  const log = recordingLogger()
  const registrar = new Registrar({ http: consulHttp(t, { address: server.address, url: server.url }), log: log.log, retry: { base: 50, cap: 100 }, selfHeal: true, deregisterTimeout: 500, watchWaitMs: 1000, random: () => 0.5 })
  t.teardown(() => registrar.close())
  await registrar.register(body, registration, undefined, false)
  await within('the watch to answer normally again', (async () => {
    while (!log.entries.some((e) => e.msg === 'consul self-heal watch answers normally again')) await new Promise((resolve) => setTimeout(resolve, 50))
  })())
  t.equal(log.entries.filter((e) => e.msg === 'consul self-heal watch got an unexpected answer').length, 1, 'two odd answers in a row, one line, with the reason')
  t.match(log.at('warn').find((e) => e.msg === 'consul self-heal watch got an unexpected answer')?.obj, { status: 500, reason: 'ACL not found' })
})
