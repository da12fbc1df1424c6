import consulPlugin, { connectNative } from '@reg/fastify-consul'
import Fastify, { type FastifyInstance } from 'fastify'

// P19's and R14's server: one app, one handler, served two ways from the same script. MODE=connect is
// Connect-native as the fastify-consul README wires it (connectNative(), Fastify({ https }), the plugin's
// `connect` option: mutual TLS, every request's caller authorized against the intentions); MODE=plain is
// the same app over plain HTTP with the same plugin registered (the baseline of P19, and the app behind
// Consul's built-in proxy in R14); MODE=tls serves the same mutual TLS with the same certificates but
// without the plugin's `connect` option, so no request is authorized (P19's split of where the cost is).
// SERVICE names it in Consul. Every mode registers with a TTL check (Connect's default), so Consul's
// probes never reach one server and not the others.
const service = process.env.SERVICE!
const consul = { address: process.env.CONSUL_HTTP_ADDR! }
const mode = process.env.MODE
const native = mode === 'connect' || mode === 'tls' ? await connectNative({ service, consul }) : undefined
const app: FastifyInstance = (native ? Fastify({ logger: false, https: native.https }) : Fastify({ logger: false })) as FastifyInstance
await app.register(consulPlugin, { service: { name: service, id: `${service}-${process.pid}` }, consul, check: { type: 'ttl' }, ...(mode === 'connect' ? { connect: native } : {}) })
app.get('/ping', async () => ({ pong: true }))
await app.listen({ host: '127.0.0.1', port: 0 })
process.send!({ port: (app.server.address() as { port: number }).port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
