import consulPlugin from '@reg/fastify-consul'
import healthPlugin from '@reg/fastify-health'
import Fastify from 'fastify'

// P7: the resident set of one process in a given shape, after a full GC, sent over IPC.
// MODE: bare (Fastify alone) | plugins (+ health + consul, registered) | watch (plugins + a watch on WATCH_SERVICE).
const mode = process.env.MODE
const app = Fastify({ logger: false })
app.get('/ping', async () => ({ pong: true }))
if (mode !== 'bare') {
  await app.register(healthPlugin, { checks: { db: async () => {} } })
  await app.register(consulPlugin, { service: { name: 'rss-probe', id: `rss-${process.pid}` }, consul: { address: process.env.CONSUL_HTTP_ADDR! } })
}
await app.listen({ host: '127.0.0.1', port: 0 })
if (mode === 'watch') {
  const watch = app.consul.discover(process.env.WATCH_SERVICE!)
  await watch.ready
  for (let i = 0; i < 1000; i++) watch.pick()
}
// Let registration, first checks and sampling settle, then collect twice.
await new Promise((resolve) => setTimeout(resolve, 500))
globalThis.gc!()
globalThis.gc!()
process.send!({ rss: process.memoryUsage().rss })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
