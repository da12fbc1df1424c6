import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startConsul } from '@reg/testkit'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildGateway, instancesBecome, startReplica, until, type Teardown } from './fixtures/app.js'
import { removeCheck } from './fixtures/consul.js'

// The gateway in front of real @reg/user-service replicas, in this process, against one real Consul agent
// for the file. Each test uses its own service name, so the tests cannot see each other's replicas.
const agent = await startConsul({ t })

interface User {
  id: string
  name: string
  email: string
}

/** Three replicas of `serviceName` sharing one SQLite file (as in `pnpm dev`), and a gateway that sees all three. */
async function fleet (t: Teardown, serviceName: string): Promise<{ gateway: FastifyInstance, replicas: FastifyInstance[], ids: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-replicas-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ids = [1, 2, 3].map((n) => `${serviceName}-${n}`)
  // One after the other: the first creates the schema in the shared file.
  const replicas: FastifyInstance[] = []
  for (const serviceId of ids) {
    replicas.push(await startReplica(t, { consulAddress: agent.address, serviceName, serviceId, dbPath: join(dir, 'users.db') }))
  }
  // Round-robin, not the gateway's least-request default: these tests assert that sequential requests spread.
  const gateway = await buildGateway(t, { upstream: serviceName, consul: { address: agent.address }, discovery: { balancer: 'round-robin' } })
  await instancesBecome(gateway, ids)
  return { gateway, replicas, ids }
}

t.test('GETs are spread over every replica; POST goes through to one of them', async (t) => {
  const { gateway, ids } = await fleet(t, 'users-rr')
  t.equal((await gateway.inject('/health')).statusCode, 200)

  const answered = new Set<string>()
  for (let i = 0; i < 6; i++) {
    const res = await gateway.inject('/users')
    t.equal(res.statusCode, 200)
    answered.add(String(res.headers['x-instance-id']))
  }
  t.same([...answered].sort(), ids, 'round-robin: every replica answered at least once')

  const created = await gateway.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })
  t.equal(created.statusCode, 201, 'POST is not retried, and needs no retry while every instance is healthy')
  t.ok(ids.includes(String(created.headers['x-instance-id'])))
  const ada = created.json<User>()
  t.equal(created.headers.location, `/users/${ada.id}`, "the upstream's Location is valid through the gateway")
  for (let i = 0; i < 3; i++) {
    const read = await gateway.inject(`/users/${ada.id}`)
    t.same([read.statusCode, read.json()], [200, ada], `read back through ${String(read.headers['x-instance-id'])}`)
  }
  const invalid = await gateway.inject({ method: 'POST', url: '/users', payload: { name: 'Ada' } })
  t.equal(invalid.statusCode, 400, "the upstream's own answers pass through, errors included")
  t.match(invalid.json(), { code: 'FST_ERR_VALIDATION' })
  const duplicate = await gateway.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ADA@example.com' } })
  t.match([duplicate.statusCode, duplicate.json()], [409, { code: 'FST_REG_USERS_DUPLICATE_EMAIL' }])
  t.match(gateway.gateway.dispatcher.stats, { requests: 12, retries: 0, retriesDenied: 0, ejections: 0, readmissions: 0, statusRetries: 0, perTryTimeouts: 0 })
})

t.test('a replica that dies without deregistering: GETs are retried on the others, it is ejected and gets no more traffic', async (t) => {
  const { gateway, replicas, ids } = await fleet(t, 'users-kill')
  const dead = replicas[1]!
  const deadId = ids[1]!
  const { dispatcher } = gateway.gateway
  const ejected = new Promise((resolve) => dispatcher.events.once('eject', resolve))

  // The process is gone as far as the network can tell: no listener, kept-alive sockets cut. Consul still
  // lists it as passing until its next HTTP check, which is removed so that it stays listed (see removeCheck).
  await removeCheck(agent.url, deadId)
  dead.server.closeAllConnections()
  dead.server.close()

  // Until the dispatcher has met the dead replica (round-robin reaches it within three requests).
  const answers: Array<[number, unknown]> = []
  while (dispatcher.ejected.length === 0 && answers.length < 30) {
    const res = await gateway.inject('/users')
    answers.push([res.statusCode, res.headers['x-instance-id']])
  }
  t.ok(answers.every(([status, id]) => status === 200 && id !== deadId), `all ${answers.length} GETs meanwhile were answered by a survivor`, { answers })
  t.match(await ejected, { id: deadId }, 'the refusing replica is ejected')
  t.same(dispatcher.ejected.map((i) => i.id), [deadId])
  t.ok(dispatcher.stats.retries >= 1, 'the requests it refused were retried elsewhere')
  t.same(gateway.gateway.watch.instances.map((i) => i.id).sort(), ids, 'Consul still lists it: ejection, not discovery, routes around it')

  const retries = dispatcher.stats.retries
  const answered = new Set<string>()
  for (let i = 0; i < 6; i++) {
    const res = await gateway.inject('/users')
    t.equal(res.statusCode, 200)
    answered.add(String(res.headers['x-instance-id']))
  }
  t.same([...answered].sort(), [ids[0], ids[2]], 'the survivors share the traffic')
  t.equal(dispatcher.stats.retries, retries, 'no attempt went to the ejected replica: nothing needed a retry')
  t.equal((await gateway.inject('/health')).statusCode, 200, 'two healthy instances left')

  // Closing the replica's Fastify now only deregisters it (its server is already closed).
  await dead.close()
  await instancesBecome(gateway, [ids[0]!, ids[2]!])
  await until(() => dispatcher.ejected.length === 0, 'an instance that left Consul is forgotten, ejection included')
})
