import gateway from '@reg/gateway'
import Fastify from 'fastify'

// P10–P12's gateway: the sample app (apps/gateway) as it ships, in its own process, with only the
// `discovery` option the scenario passes (JSON in DISCOVERY) on top of the app's defaults. Each
// baseline is this same process with the old settings, so only discovery differs.
const app = Fastify({ logger: false })
await app.register(gateway, { consul: { address: process.env.CONSUL_HTTP_ADDR! }, register: false, discovery: JSON.parse(process.env.DISCOVERY!) })
await app.listen({ host: '127.0.0.1', port: 0 })
process.send!({ port: (app.server.address() as { port: number }).port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
