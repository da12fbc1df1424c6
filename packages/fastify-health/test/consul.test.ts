import type { AddressInfo } from 'node:net'
import { startConsul } from '@reg/testkit'
import t from 'tap'
import { build, switchable, until } from './fixtures/helpers.js'

interface ConsulCheck {
  ServiceID: string
  Status: string
  Output: string
}

// Consul, not this package, decides what 200/429/503 mean; only a real agent can confirm the mapping.
t.test('a real Consul agent reads /health as passing → warning → critical → passing, and draining as critical', async (t) => {
  const agent = await startConsul({ t })
  const db = switchable()
  const cache = switchable()
  const app = await build(t, { defaultInterval: 20, checks: { db: db.fn, cache: { fn: cache.fn, critical: false } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  const service = 'health-e2e'
  const id = `${service}-${port}`
  const res = await fetch(`${agent.url}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({
      Name: service,
      ID: id,
      Address: '127.0.0.1',
      Port: port,
      Check: { HTTP: `http://127.0.0.1:${port}${app.health.path}`, Interval: '1s', Timeout: '1s' }
    })
  })
  t.equal(res.status, 200, await res.text())

  let last: ConsulCheck | undefined
  const consulSees = async (status: string): Promise<void> => {
    await until(`Consul to see ${status} (last: ${last?.Status})`, async () => {
      const checks = await (await fetch(`${agent.url}/v1/health/checks/${service}`)).json() as ConsulCheck[]
      last = checks.find((check) => check.ServiceID === id)
      return last?.Status === status
    }, 20_000)
  }

  await consulSees('passing')
  cache.fail('cache unreachable')
  await consulSees('warning')
  t.match(last?.Output, /429/)
  t.match(last?.Output, /cache unreachable/, 'operators read the reason in Consul')
  db.fail('db unreachable')
  await consulSees('critical')
  t.match(last?.Output, /503/)
  db.pass()
  cache.pass()
  await consulSees('passing')
  app.health.drain()
  await consulSees('critical')
  t.match(last?.Output, /"draining":true/)
})
