import t from 'tap'
import { startConsulCluster } from '../src/index.js'

t.test('3 servers + 1 client: a leader, then a new one after the leader is killed', async (t) => {
  const cluster = await startConsulCluster({ t })
  t.equal(cluster.servers.length, 3)
  t.equal(cluster.clients.length, 1)
  const client = cluster.clients[0]!
  const register = await fetch(`${client.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'c', ID: 'c-1' }) })
  t.equal(register.status, 200, 'apps register through the client agent')
  await register.arrayBuffer()

  const first = await cluster.leader()
  await first.kill()
  t.notOk(first.running())
  await cluster.ready()
  const second = await cluster.leader()
  t.not(second, first, 'the remaining servers elected another leader')
  // The client agent syncs its services to the new leader's catalog shortly after the election.
  let ids: string[] = []
  for (const deadline = Date.now() + 15_000; Date.now() < deadline && ids.length === 0;) {
    const services = await (await fetch(`${client.url}/v1/catalog/service/c`)).json() as Array<{ ServiceID: string }>
    ids = services.map((s) => s.ServiceID)
    if (ids.length === 0) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.same(ids, ['c-1'], 'the registration is in the new leader\'s catalog')

  await Promise.all(cluster.servers.map((s) => s.kill()))
  await t.rejects(cluster.leader(), { message: 'no leader' }, 'with every server gone, nobody leads')
  await cluster.stop()
  t.notOk(client.running(), 'stop() stops every member')
})

t.test('a cluster that cannot elect in time fails with every member\'s log and leaves nothing behind', async (t) => {
  const err = await startConsulCluster({ servers: 3, clients: 0, readyTimeout: 1 }).catch((e: Error) => e)
  t.match((err as Error).message, /not ready[\s\S]*--- server-0-/)
})
