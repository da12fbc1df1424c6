import replyFrom from '@fastify/reply-from'
import consulPlugin from '@reg/fastify-consul'
import Fastify from 'fastify'

// P3's gateway: the same reply-from proxy, either to fixed upstreams (the baseline: MODE=static with
// UPSTREAMS, comma-separated) or through the discovery dispatcher over every healthy `echo` instance.
const app = Fastify({ logger: false })
await app.register(consulPlugin, { service: { name: 'proxy' }, register: false, consul: { address: process.env.CONSUL_HTTP_ADDR! } })
if (process.env.MODE === 'static') {
  // What one writes without discovery: reply-from's own undici Pool for one base, and an undici BalancedPool
  // for several (reply-from builds it from an array of bases; a one-element array is a plain base).
  await app.register(replyFrom, { base: process.env.UPSTREAMS!.split(',') })
} else {
  await app.after()
  // TAG narrows discovery to one instance: the dispatcher's own cost, without spreading the load.
  const dispatcher = app.consul.dispatcher('echo', process.env.TAG ? { tag: process.env.TAG } : {})
  await dispatcher.ready
  await app.register(replyFrom, { base: 'http://echo', undici: dispatcher })
}
app.get('/users', (request, reply) => reply.from('/users'))
await app.listen({ host: '127.0.0.1', port: 0 })
process.send!({ port: (app.server.address() as { port: number }).port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
