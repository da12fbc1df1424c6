import { startConsulCluster } from '@reg/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { request } from 'undici'
import consulPlugin from '../src/index.js'
import { stateBecomes } from './fixtures/app.js'

// Drill R3: a 3-server cluster whose leader is killed under load. Apps talk to a client agent, as in
// production. Routed GETs must not fail; registration and discovery must carry on once a new leader
// is elected, and stale reads keep the watch answering meanwhile.

async function echo (t: { teardown (fn: () => unknown): void }, address: string, id: string): Promise<FastifyInstance> {
  const app = Fastify()
  app.get('/health', async () => ({ status: 'passing' }))
  app.get('/who', async () => ({ id }))
  await app.register(consulPlugin, { service: { name: 'echo', id }, consul: { address } })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  return app
}

t.test('R3: leader killed under load: no routed GET fails; registration and discovery continue', async (t) => {
  const cluster = await startConsulCluster({ t })
  const client = cluster.clients[0]!
  await Promise.all(['echo-1', 'echo-2', 'echo-3'].map((id) => echo(t, client.address, id)))

  const caller = Fastify()
  t.teardown(() => caller.close())
  await caller.register(consulPlugin, { service: { name: 'caller' }, register: false, consul: { address: client.address } })
  await caller.ready()
  const watch = caller.consul.discover('echo', { stale: true, wait: '2s' })
  const dispatcher = caller.consul.dispatcher('echo', { stale: true, wait: '2s' })
  await dispatcher.ready
  await new Promise<void>((resolve) => {
    const check = (): void => { if (watch.instances.length === 3) resolve() }
    watch.on('change', check)
    check()
  })

  let ok = 0
  const failed: string[] = []
  const state = { running: true }
  const loops = Array.from({ length: 4 }, async () => {
    while (state.running) {
      try {
        const res = await request('http://echo/who', { dispatcher })
        await res.body.arrayBuffer()
        if (res.statusCode === 200) ok++
        else failed.push(String(res.statusCode))
      } catch (err) {
        failed.push((err as Error).message)
      }
    }
  })

  const leader = await cluster.leader()
  await leader.kill()
  await cluster.ready()
  const next = await cluster.leader()
  t.not(next, leader, 'a new leader was elected')

  // Registration continues: a fourth instance registers through the client agent and is discovered.
  const changed = new Promise<void>((resolve) => {
    const check = (): void => { if (watch.instances.some((i) => i.id === 'echo-4')) resolve() }
    watch.on('change', check)
  })
  await echo(t, client.address, 'echo-4')
  await changed
  t.pass('a new instance registered and was discovered after the election')

  state.running = false
  await Promise.all(loops)
  t.comment(`R3 observed: ${ok} routed GETs succeeded, ${failed.length} failed across the election; watch state ${watch.state}`)
  t.ok(ok > 0)
  t.same(failed, [], 'no routed GET failed')
  watch.close()
})
