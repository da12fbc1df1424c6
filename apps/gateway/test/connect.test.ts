import { startConsul } from '@reg/testkit'
import t from 'tap'
import { get, startConnectFleet, until } from './fixtures/connect-fleet.js'
import { whileRunning } from './fixtures/server.js'

// REG_CONNECT=true on both apps (issue #24, item 8): the gateway calls user-service over Connect mTLS,
// and intentions act on its calls, as the root README's demo shows. The fleet: fixtures/connect-fleet.ts.

const agent = await startConsul({ t })

t.test('REG_CONNECT=true on both apps: the gateway calls user-service over Connect mTLS; a deny intention turns its calls into coded 403s, deleting it restores them', async (t) => {
  const { ids, gatewayPort, base, plainBase, all, gateway } = await startConnectFleet(t, agent, { plain: true })

  const registered = await (await fetch(`${agent.url}/v1/agent/service/gateway-connect`)).json() as { Connect?: unknown, Port: number }
  t.equal(registered.Connect, undefined, 'the gateway is an edge: it does not register as Connect-native (its public port is plain HTTP)')
  t.equal(registered.Port, gatewayPort)

  const served = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const answer = await whileRunning(all, get(base))
    t.equal(answer.status, 200, `request ${i} through the gateway is served`)
    if (answer.instance !== undefined) served.add(answer.instance)
  }
  t.same([...served].sort(), ids, 'both Connect-native replicas serve the gateway')

  const refused = await whileRunning(all, get(plainBase!))
  t.match(refused, { status: 503, code: 'FST_REG_CONNECT_IDENTITY_REQUIRED' },
    'negative control: a gateway without REG_CONNECT gets a coded 503, so the 200s above did need the gateway\'s certificate')

  // The demo's `consul intention create -deny gateway user-service`, through the HTTP API.
  const res = await fetch(`${agent.url}/v1/connect/intentions`, { method: 'POST', body: JSON.stringify({ SourceName: 'gateway', DestinationName: 'user-service', Action: 'deny' }) })
  const { ID } = await res.json() as { ID: string }
  const denied = await whileRunning(all, until(base, (a) => a.status === 403, 5000))
  t.match(denied.answer, { status: 403, code: 'FST_REG_CONNECT_FORBIDDEN' }, 'the deny reaches the gateway\'s calls as a coded 403 (within a 5 s bound that proves it happens)')
  t.comment(`deny → first 403 through the gateway: ${denied.took} ms`)
  // A 403 is the replica's answer, not a failure: the gateway passes it on instead of ejecting replicas.
  const stillDenied = await whileRunning(all, get(base))
  t.match(stillDenied, { status: 403, code: 'FST_REG_CONNECT_FORBIDDEN' }, 'and stays denied')

  await fetch(`${agent.url}/v1/connect/intentions/${ID}`, { method: 'DELETE' })
  const allowed = await whileRunning(all, until(base, (a) => a.status === 200, 5000))
  t.equal(allowed.answer.status, 200, 'served again once the intention is deleted')
  t.comment(`delete → first 200 through the gateway: ${allowed.took} ms`)
  const afterwards = await whileRunning(all, Promise.all(Array.from({ length: 10 }, async () => await get(base))))
  t.same(afterwards.map((a) => a.status), Array(10).fill(200), 'both replicas were kept: a deny ejects nobody')

  for (const p of all) p.child.kill('SIGTERM')
  for (const p of all) t.same(await p.exited, { code: 0, signal: null }, 'a graceful shutdown exits 0')
  t.equal(gateway.stderr(), '')
})
