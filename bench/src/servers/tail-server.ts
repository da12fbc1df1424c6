import { setTimeout as sleep } from 'node:timers/promises'
import consulPlugin from '@reg/fastify-consul'
import Fastify from 'fastify'

// P17's, P18's and P23's replica: user-service's shape (GET /users, answered with x-instance-id, registered as
// user-service with the plugin), spawned by startReplicas, with two knobs for the tail drills. The
// replica named by SLOW_ID delays SLOW_SHARE of its answers by SLOW_MS (P17). Every replica counts the
// requests it received (`/_tries`) and those that arrived after the caller's deadline, which the load
// sends as an epoch-ms `x-bench-deadline-at` (P18): a try that starts after it is work for nobody.
// CHECK_TIMEOUT (P23) sets Consul's HTTP check timeout: longer than a freeze, a check that meets the frozen
// replica waits for the thaw and passes, instead of timing out and leaving it critical in Consul for up to
// one more check interval, which every side that follows Consul (ours, HAProxy) would then wait for.
const id = process.env.SERVICE_ID!
const port = Number(process.env.PORT)
const slow = process.env.SLOW_ID === id
const share = Number(process.env.SLOW_SHARE ?? 0)
const delayMs = Number(process.env.SLOW_MS ?? 0)
const tries = { received: 0, late: 0 }

const app = Fastify({ logger: false })
app.get('/health', async () => ({ status: 'passing' }))
app.get('/users', async (req, reply) => {
  tries.received++
  const dueBy = Number(req.headers['x-bench-deadline-at'])
  if (Number.isFinite(dueBy) && Date.now() > dueBy) tries.late++
  if (slow && Math.random() < share) await sleep(delayMs)
  reply.header('x-instance-id', id)
  return { id, users: [] }
})
app.get('/_tries', async () => tries)
const checkTimeout = process.env.CHECK_TIMEOUT
await app.register(consulPlugin, {
  service: { name: 'user-service', id, port },
  ...(checkTimeout === undefined ? {} : { check: { timeout: checkTimeout } }),
  consul: { address: process.env.CONSUL_HTTP_ADDR! }
})
await app.listen({ host: '127.0.0.1', port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
