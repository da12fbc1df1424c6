import healthPlugin from '@reg/fastify-health'
import Fastify from 'fastify'

// P1's server: /health with two registered checks next to a bare /ping, in one app.
const app = Fastify({ logger: false })
await app.register(healthPlugin, {
  checks: {
    db: async () => {},
    cache: { fn: async () => {}, critical: false }
  }
})
app.get('/ping', async () => ({ pong: true }))
await app.listen({ host: '127.0.0.1', port: 0 })
process.send!({ port: (app.server.address() as { port: number }).port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
