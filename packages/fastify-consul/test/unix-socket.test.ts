import { startUnixConsul } from '@reg/testkit'
import t from 'tap'
import { buildApp, stateBecomes } from './fixtures/app.js'
import { healthService } from './fixtures/consul-api.js'
import { failedAttemptCode, serving, withEnv } from './fixtures/tls.js'

// The agent serves its API on a unix socket; the plugin is given only `unix://…`. The agent's loopback
// HTTP port is used by the test alone, to read what Consul believes.
const agent = await startUnixConsul({ t })

t.test('CONSUL_HTTP_ADDR=unix:///…: registered and discovered over the socket; the check still probes TCP', async (t) => {
  withEnv(t, { CONSUL_HTTP_ADDR: `unix://${agent.socketPath}` })
  const { app } = await buildApp(t, { service: { name: 'sock', id: 'sock-1' }, failFast: true })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  await stateBecomes(app, 'registered')
  t.match(app.consul.registration?.check, { type: 'http', url: `http://127.0.0.1:${port}/health` }, 'the HTTP check targets the app\'s TCP address')
  const entries = await healthService(agent.url, 'sock', { passing: true })
  t.same(entries.map((e) => [e.Service.ID, e.Service.Port]), [['sock-1', port]])

  const watch = app.consul.discover('sock')
  await watch.ready
  t.same(watch.instances.map((i) => i.id), ['sock-1'], 'discovered over the socket')
  const self = await app.consul.client.agent.self() as { Config: { NodeName: string } }
  t.equal(self.Config.NodeName, agent.nodeName, 'the `consul` npm client talks over the socket too')
})

t.test('a socket that is not there: unreachable, coded, serving, not registered', async (t) => {
  const { app, logs } = await buildApp(t, { service: { name: 'nosock', id: 'nosock-1' }, retry: { base: 50, cap: 300 }, consul: { address: `unix://${agent.socketPath}.missing` } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(await failedAttemptCode(logs), 'FST_REG_CONSUL_UNREACHABLE')
  t.equal(await serving(app), 200)
  t.same(await healthService(agent.url, 'nosock'), [])
})
