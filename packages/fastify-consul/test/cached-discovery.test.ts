import { startConsul } from '@reg/testkit'
import t from 'tap'
import { watchSettings } from '../src/discovery/options.js'
import { buildApp } from './fixtures/app.js'

// `cached: true` is answered by the agent's cache. The agent's own counters say so: the cache is only
// touched by `?cached` reads, so the uncached watch is the negative control.
const agent = await startConsul({ t, config: 'telemetry {\n  prometheus_retention_time = "10m"\n  disable_hostname = true\n}' })

async function cacheEntries (): Promise<number> {
  const text = await (await fetch(`${agent.url}/v1/agent/metrics?format=prometheus`)).text()
  const line = text.split('\n').find((l) => l.startsWith('consul_consul_cache_entries_count '))
  return Number(line?.split(' ')[1] ?? 0)
}

async function register (id: string): Promise<void> {
  const res = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'cached-svc', ID: id, Port: 1 }) })
  await res.arrayBuffer()
}

t.test('a cached watch follows changes from the agent cache; an uncached one never touches it', async (t) => {
  await register('cached-1')
  const { app } = await buildApp(t, { service: { name: 'reader' }, register: false, consul: { address: agent.address } })
  await app.ready()

  const plain = app.consul.discover('cached-svc')
  await plain.ready
  t.equal(await cacheEntries(), 0, 'uncached: the agent cache is empty')

  const cached = app.consul.discover('cached-svc', { cached: true })
  t.not(cached, plain, 'a separate watcher: cached is part of the query')
  await cached.ready
  t.same(cached.instances.map((i) => i.id), ['cached-1'])
  t.equal(await cacheEntries(), 1, 'cached: one entry in the agent cache')

  const changed = new Promise((resolve) => cached.on('change', resolve))
  await register('cached-2')
  await changed
  t.same(cached.instances.map((i) => i.id).sort(), ['cached-1', 'cached-2'], 'a blocking query on the cache wakes on the change')
})

t.test('cached is a query field: it is validated and keys the watcher', async (t) => {
  t.not(watchSettings('a', { cached: true }).key, watchSettings('a', {}).key)
  t.equal(watchSettings('a', {}).query.cached, false, 'off by default')
  const { app } = await buildApp(t, { service: { name: 'reader' }, register: false, consul: { address: agent.address } })
  await app.ready()
  t.throws(() => app.consul.discover('a', { cached: 'yes' as unknown as boolean }), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /cached/ })
})
