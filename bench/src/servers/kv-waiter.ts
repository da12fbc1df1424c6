import consulPlugin from '@reg/fastify-consul'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import { request } from 'undici'
import { monotonicMs } from './kv-clock.js'

// P22's waiters, each in a process of its own and each on a KV prefix of its own, so a write wakes one
// waiter only. In one process the wake-ups queued behind each other in one event loop (#28's A/A read
// 0.69–1.43); on one prefix the agent woke the parked queries last-parked first, so whichever side re-armed
// later won by 0.2–0.4 ms (measured: ours ÷ raw 0.93–1.00 parked last, 1.23–1.42 parked first).
// WAITER=config: an app with the plugin's `config` (prefix `config`), which reports every 'change'.
// WAITER=raw: what the plugin's loop does without the plugin, a bare undici blocking query on PREFIX,
// re-armed at each answer's index. Each reports the instant it saw its write on the machine's monotonic
// clock (kv-clock.ts), so the parent can subtract the instant it wrote.
const url = `http://${process.env.CONSUL_HTTP_ADDR!}`
const send = (msg: Record<string, unknown>): void => { process.send!(msg) }

if (process.env.WAITER === 'config') {
  const app = Fastify({ logger: false })
  await app.register(consulPlugin, {
    service: { name: 'p22' },
    register: false,
    consul: { address: process.env.CONSUL_HTTP_ADDR! },
    config: { schema: Type.Object({ n: Type.Integer() }) }
  })
  await app.ready()
  app.consul.config!.on('change', () => { send({ woke: monotonicMs() }) })
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
} else {
  const read = async (index: number): Promise<number> => {
    const res = await request(`${url}/v1/kv/${process.env.PREFIX!}/?recurse${index > 0 ? `&index=${index}&wait=30s` : ''}`)
    await res.body.arrayBuffer()
    return Number(res.headers['x-consul-index'])
  }
  const loop = async (): Promise<void> => {
    let index = await read(0)
    for (;;) {
      const next = await read(index)
      // The same index back is a wait that ran out (30 s, longer than any run): nothing to report.
      /* c8 ignore next */
      if (next !== index) send({ woke: monotonicMs() })
      index = next
    }
  }
  /* c8 ignore next -- a query that fails (the agent gone mid-run) is reported, and fails the run */
  loop().catch((err: Error) => { send({ error: err.message }) })
  process.on('SIGTERM', () => process.exit(0))
}
send({ ready: true })
