import { startConsul } from '@reg/testkit'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import consulPlugin from '../src/index.js'
import { kvPut } from './fixtures/kv.js'

// P22: `consul kv put` → the new configuration visible in the app, against Consul's own blocking-query
// wake-up on the same prefix, measured in the same trials (both wait on the same write). Printed, not
// asserted: timing on a shared box is a figure for the notes, not a test outcome.

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

t.test('P22: kv put → fastify.config, vs a raw blocking query on the prefix', async (t) => {
  const agent = await startConsul({ t })
  await kvPut(agent, 'config/p22/n', '0')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(consulPlugin, {
    service: { name: 'p22' },
    register: false,
    consul: { address: agent.address },
    config: { schema: Type.Object({ n: Type.Integer() }) }
  })
  await app.ready()
  const ours: number[] = []
  const raw: number[] = []
  for (let n = 1; n <= 25; n++) {
    const index = Number((await fetch(`${agent.url}/v1/kv/config/?recurse`)).headers.get('x-consul-index'))
    // Consul's own wake-up: a blocking query already waiting when the write lands, on the same HTTP client (undici).
    const rawWoke = request(`${agent.url}/v1/kv/config/?recurse&index=${index}&wait=30s`).then(async (r) => { await r.body.text(); return performance.now() })
    const seen = new Promise<number>((resolve) => {
      const listener = (): void => {
        app.consul.config!.off('change', listener)
        resolve(performance.now())
      }
      app.consul.config!.on('change', listener)
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = performance.now()
    await kvPut(agent, 'config/p22/n', String(n))
    ours.push(await seen - started)
    raw.push(await rawWoke - started)
    t.equal((app.config as { n?: number }).n, n)
  }
  const [m, r] = [median(ours), median(raw)]
  t.comment(`P22 median kv put → visible in the app: ${m.toFixed(2)} ms; Consul's raw blocking-query wake-up: ${r.toFixed(2)} ms; ratio ${(m / r).toFixed(2)}× (25 trials)`)
})
