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
  const services = await (await fetch(`${client.url}/v1/catalog/service/c`)).json() as Array<{ ServiceID: string }>
  t.same(services.map((s) => s.ServiceID), ['c-1'], 'the catalog survived the election')
})
