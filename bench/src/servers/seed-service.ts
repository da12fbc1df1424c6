import Consul from 'consul'
import Fastify from 'fastify'

// The guide's way, for P5's baseline: register with the consul client and an HTTP check (no initial
// Status), and on SIGTERM deregister and exit at once.
const port = Number(process.env.PORT)
const id = process.env.SERVICE_ID!
const [host, consulPort] = process.env.CONSUL_HTTP_ADDR!.split(':') as [string, string]
const app = Fastify()
app.get('/health', async () => ({ status: 'passing' }))
app.get('/users', async () => [])
await app.listen({ host: '127.0.0.1', port })
const consul = new Consul({ host, port: Number(consulPort) })
await consul.agent.service.register({ name: 'user-service', id, address: '127.0.0.1', port, check: { name: 'http', http: `http://127.0.0.1:${port}/health`, interval: '1s', timeout: '1s', deregistercriticalserviceafter: '1m' } })
process.on('SIGTERM', () => {
  consul.agent.service.deregister(id).finally(() => process.exit(0))
})
