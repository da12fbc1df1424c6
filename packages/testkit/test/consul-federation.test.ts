import { Resolver } from 'node:dns/promises'
import t from 'tap'
import { actUntil, agentCall, startConsulFederation, until } from '../src/consul-federation.js'

interface Entry { Service: { ID: string }, Node: { Datacenter: string } }

t.test('two datacenters on loopback, WAN-joined: each lists both, and ?dc= reads the other through the local agent', async (t) => {
  const fed = await startConsulFederation({ t, dns: true })
  const { dc1, dc2 } = fed.agents as { dc1: NonNullable<typeof fed.agents['dc1']>, dc2: NonNullable<typeof fed.agents['dc2']> }
  for (const agent of [dc1, dc2]) t.same((await agentCall<string[]>(`${agent.url}/v1/catalog/datacenters`)).sort(), ['dc1', 'dc2'])
  t.not(dc1.httpPort, dc2.httpPort)

  const res = await fetch(`${dc2.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ ID: 'users-dc2', Name: 'users', Port: 1234, Check: { TTL: '30s', Status: 'passing' } }) })
  t.equal(res.status, 200, 'registered in dc2')
  const remote = await until(async () => await agentCall<Entry[]>(`${dc1.url}/v1/health/service/users?dc=dc2&passing`), (e) => e.length === 1, 10_000, 'users not seen in dc2')
  t.equal(remote[0]!.Service.ID, 'users-dc2')
  t.equal(remote[0]!.Node.Datacenter, 'dc2', 'dc2\'s instance, read through dc1\'s agent')
  t.same(await agentCall<Entry[]>(`${dc1.url}/v1/health/service/users`), [], 'and not in dc1')
  // `dns`: each agent answers DNS on its own port, and dc1's resolves dc2's service by name.
  t.not(fed.dnsPorts.dc1, fed.dnsPorts.dc2)
  const resolver = new Resolver()
  resolver.setServers([`127.0.0.1:${fed.dnsPorts.dc1!}`])
  t.same((await resolver.resolveSrv('users.service.dc2.consul')).map((r) => r.port), [1234], 'SRV of dc2\'s instance through dc1\'s DNS')
  // Coordinates come with the servers' periodic updates, a few seconds after the join.
  const coords = await until(async () => await agentCall<Array<{ Datacenter: string }>>(`${dc1.url}/v1/coordinate/datacenters`), (c) => c.length === 2, 30_000, 'coordinates')
  t.same(coords.map((c) => c.Datacenter).sort(), ['dc1', 'dc2'], 'round-trip data for both')

  // A lost datacenter: dc1 keeps answering for itself; the remote read fails instead of hanging.
  await dc2.kill()
  t.same(await agentCall<Entry[]>(`${dc1.url}/v1/health/service/users`), [], 'dc1 answers for itself')
  await t.rejects(until(async () => await agentCall(`${dc1.url}/v1/health/service/users?dc=dc2`), () => false, 30_000, 'never'), /GET .*dc=dc2: 5\d\d /, 'the remote read is an HTTP error once dc2 is gone')

  // Back, empty (a -dev agent keeps nothing), and joined again.
  await dc2.start()
  await fed.join('dc2')
  t.same(await agentCall<Entry[]>(`${dc1.url}/v1/health/service/users?dc=dc2`), [], 'dc2 again, empty')
  await fed.stop()
  t.notOk(dc1.running() || dc2.running(), 'stop() stops every agent')
  await fed.stop()
  t.pass('stop() twice is harmless')
})

t.test('three datacenters: every agent lists every one', async (t) => {
  const fed = await startConsulFederation({ datacenters: ['east', 'west', 'north'], t })
  for (const agent of Object.values(fed.agents)) t.same((await agentCall<string[]>(`${agent.url}/v1/catalog/datacenters`)).sort(), ['east', 'north', 'west'])
  t.same(fed.dnsPorts, {}, 'no DNS unless asked')
})

t.test('names that make no federation are refused before any agent starts', async (t) => {
  await t.rejects(startConsulFederation({ datacenters: ['dc1'] }), /two or more distinct datacenter names, got \["dc1"\]/)
  await t.rejects(startConsulFederation({ datacenters: ['dc1', 'dc1'] }), /two or more distinct/)
})

t.test('a datacenter name Consul refuses: the agents already started are stopped, and the error says why', async (t) => {
  await t.rejects(startConsulFederation({ datacenters: ['dc1', 'not a name!'] }), /consul agent exited during start[\s\S]*datacenter/i)
})

t.test('until() gives up after its bound, naming what it waited for and the last value', async (t) => {
  let calls = 0
  await t.rejects(until(async () => ++calls, () => false, 120, 'never true'), { message: /^never true after 120 ms: \d+$/ })
  t.ok(calls >= 2, 'it polled more than once')
  t.equal(await until(async () => 7, (v) => v === 7, 0, 'x'), 7, 'already true: no wait')
})

t.test('actUntil() acts again each time its wait runs out, and gives up after its bound', async (t) => {
  let acts = 0
  const seen = await actUntil(async () => { acts++ }, async () => acts, (n) => n >= 3, { againMs: 60, timeoutMs: 5000, what: 'third act' })
  t.equal(seen, 3, 'done once the third act showed')
  t.equal(acts, 3, 'no act after that')
  acts = 0
  await t.rejects(actUntil(async () => { acts++ }, async () => acts, () => false, { againMs: 60, timeoutMs: 200, what: 'never' }), { message: /^never after \d+ ms: \d+ \(\d+ tries in 200 ms\)$/ })
  t.ok(acts >= 2, 'acted more than once before giving up')
})
