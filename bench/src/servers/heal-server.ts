import consulPlugin from '@reg/fastify-consul'
import healthPlugin from '@reg/fastify-health'
import Fastify from 'fastify'

// P9's service: health + consul with their defaults, registered as `p9` with an HTTP or a TTL check
// (CHECK=http|ttl). Nothing here knows about the agent's restarts: healing is the plugin's own job.
const app = Fastify({ logger: false })
await app.register(healthPlugin)
await app.register(consulPlugin, {
  service: { name: 'p9', id: process.env.SERVICE_ID! },
  check: { type: process.env.CHECK === 'ttl' ? 'ttl' : 'http' },
  consul: { address: process.env.CONSUL_HTTP_ADDR! }
})
await app.listen({ host: '127.0.0.1', port: 0 })
process.send!({ port: (app.server.address() as { port: number }).port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
