import consulPlugin from '@reg/fastify-consul'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import { request } from 'undici'

// P22's waiters, each in a process of its own: in one process the three wake-ups of a write queued behind
// each other in one event loop, and the figure measured that order rather than the plugin (#28's A/A
// read 0.69–1.43). WAITER=config: an app with the plugin's `config` on the prefix, which reports every
// 'change'. WAITER=raw: a bare undici blocking query on the prefix, armed at the index the parent sends.
// Each reports when it saw the write on the wall clock (timeOrigin + now(), the same clock in every
// process of the machine), so the parent can subtract the instant it wrote.
const url = `http://${process.env.CONSUL_HTTP_ADDR!}`
const now = (): number => performance.timeOrigin + performance.now()
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
  app.consul.config!.on('change', () => { send({ woke: now() }) })
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
} else {
  process.on('message', (msg: { arm: string }) => {
    request(`${url}/v1/kv/config/?recurse&index=${msg.arm}&wait=30s`).then(async (res) => {
      await res.body.arrayBuffer()
      send({ woke: now() })
    /* c8 ignore next -- a query that fails (the agent gone mid-run) is reported, and fails the run */
    }, (err: Error) => { send({ error: err.message }) })
  })
  process.on('SIGTERM', () => process.exit(0))
}
send({ ready: true })
