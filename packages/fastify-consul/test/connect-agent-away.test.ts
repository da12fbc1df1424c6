import t from 'tap'
import Fastify from 'fastify'
import healthPlugin from '@reg/fastify-health'
import { connectIdentity, startConsul } from '@reg/testkit'
import consulPlugin, { connectNative } from '../src/index.js'
import { connectCheck, CONNECT_CHECK } from '../src/connect/health-check.js'
import type { ConnectTls } from '../src/connect/certificates.js'
import { get, type ClientTls } from './fixtures/connect-tls.js'
import { eventually } from './fixtures/consul-api.js'

// #24: "the agent going away keeps the current certificates serving (fail static), and the plugin
// reports this in /health as a warning". A file of its own: its agent is stopped and started again.

t.test('connectCheck: a warning only while stale, naming until when the served leaf is valid', async (t) => {
  const tls = { identity: { service: 'api' }, validBefore: Date.parse('2030-01-02T03:04:05Z') } as unknown as ConnectTls
  const view = { state: 'live' as 'starting' | 'live' | 'stale' | 'closed', current: tls as ConnectTls | undefined }
  const check = connectCheck(view, () => Date.parse('2030-01-01T00:00:00Z'))
  t.equal(check(), undefined, 'live: passing')
  view.state = 'stale'
  t.same(check(), { status: 'warning', output: 'certificates not refreshed: the local Consul agent does not answer; serving the last leaf of api (valid until 2030-01-02T03:04:05.000Z)' })
  t.match(connectCheck(view, () => Date.parse('2030-01-03T00:00:00Z'))(), { status: 'warning', output: /EXPIRED at 2030-01-02T03:04:05\.000Z: callers refuse it/ }, 'past its validity: said, still a warning (fail static)')
  for (const state of ['starting', 'closed'] as const) {
    view.state = state
    t.equal(check(), undefined, state)
  }
  view.state = 'stale'
  view.current = undefined
  t.equal(check(), undefined, 'nothing served yet: nothing to report (ready() waits for the first pair)')
})

t.test('the agent stops: mTLS keeps serving with the last pair, /health warns, and passes again when it is back', async (t) => {
  const agent = await startConsul({ t })
  const consul = { address: agent.address }
  const pair = await connectIdentity(agent, 'web')
  const web: ClientTls = { ca: pair.ca, cert: pair.cert, key: pair.key, expect: { service: 'away-api', trustDomain: pair.trustDomain } }

  const connect = await connectNative({ service: 'away-api', consul })
  const app = Fastify({ https: connect.https })
  t.teardown(() => app.close())
  await app.register(healthPlugin, { underPressure: { maxEventLoopDelay: 0 } })
  await app.register(consulPlugin, { service: { name: 'away-api' }, register: false, consul, connect })
  app.get('/hello', async () => ({ hello: 'world' }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const health = async (): Promise<{ status: string, checks: Record<string, { status: string, output?: string }> }> =>
    JSON.parse((await get(port, web, { path: '/health' })).body)

  t.equal((await get(port, web, { path: '/hello', agent: false })).status, 200, 'served while the agent is up')
  const before = await health()
  t.match(before.checks[CONNECT_CHECK], { status: 'passing' }, 'negative control: the check passes while the agent answers')

  await agent.stop()
  const warned = await eventually(async () => { const h = await health(); return h.checks[CONNECT_CHECK]?.status === 'warning' ? h : undefined }, 'the warning')
  t.match(warned.checks[CONNECT_CHECK]!.output, /the local Consul agent does not answer; serving the last leaf of away-api \(valid until /)
  t.equal(warned.status, 'warning', 'a warning, not critical: the instance still serves')
  const answer2 = await get(port, web, { path: '/hello', agent: false })
  t.equal(answer2.status, 200, 'a new connection from a known caller is still served: the last leaf, roots and decision (fail static)')

  // A -dev agent keeps its CA in memory: started again, it has a new one and a new trust domain (an
  // agent that lost its data), so the app rotates to a new leaf and roots, and the caller needs a
  // certificate of the new CA and expects the new trust domain.
  await agent.start()
  const pair2 = await connectIdentity(agent, 'web')
  const renewed: ClientTls = { ca: pair2.ca, cert: pair2.cert, key: pair2.key, expect: { service: 'away-api', trustDomain: pair2.trustDomain } }
  const passing = await eventually(async () => {
    const res = await get(port, renewed, { path: '/health', agent: false }).catch(() => undefined)
    const h = res === undefined ? undefined : JSON.parse(res.body) as { checks: Record<string, { status: string }> }
    return h?.checks[CONNECT_CHECK]?.status === 'passing' ? h : undefined
  }, 'passing again, on the new CA', 60_000) // a bound: the keepers' backoff (cap 30 s) may have grown while the agent was away
  t.match(passing.checks[CONNECT_CHECK], { status: 'passing' }, 'passing again once the agent answers, with its new CA in use')
  t.equal(connect.certificates.state, 'live')
})
