import consulPlugin from '@reg/fastify-consul'
import Fastify from 'fastify'

// P3's upstream: a small JSON answer, registered in Consul as `echo` with the plugin.
const app = Fastify({ logger: false })
app.get('/health', async () => ({ status: 'passing' }))
app.get('/users', async () => ({ id: process.env.SERVICE_ID, users: [] }))
await app.register(consulPlugin, { service: { name: 'echo', id: process.env.SERVICE_ID!, tags: [process.env.SERVICE_ID!] }, consul: { address: process.env.CONSUL_HTTP_ADDR! } })
await app.listen({ host: '127.0.0.1', port: 0 })
process.send!({ port: (app.server.address() as { port: number }).port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
