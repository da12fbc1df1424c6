import { once } from 'node:events'
import { createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp, stateBecomes } from './fixtures/app.js'
import { eventually, healthService } from './fixtures/consul-api.js'

// Issue #29 item 11: the check options Consul has and we did not expose, against the real 1.8.7 agent
// (which refuses unknown JSON fields, so a field it did not know would fail the registration itself).

async function consulStatus (agent: ConsulAgent, service: string, id: string): Promise<string | undefined> {
  return (await healthService(agent.url, service))[0]?.Checks.find((c) => c.CheckID.startsWith(`service:${id}:`))?.Status
}

/** The agent's own view, updated as each probe ends (the catalog follows later, by anti-entropy). */
async function agentStatus (agent: ConsulAgent, id: string): Promise<string | undefined> {
  const checks = await (await fetch(`${agent.url}/v1/agent/checks`)).json() as Record<string, { CheckID: string, Status: string }>
  return Object.values(checks).find((c) => c.CheckID.startsWith(`service:${id}:`))?.Status
}

t.test('HTTP check method and header: Consul probes with them', async (t) => {
  const agent = await startConsul({ t })
  const probes: Array<{ method: string, header: string | undefined }> = []
  const { app } = await buildApp(t, { service: { name: 'probed', id: 'probed-1' }, check: { path: '/probe', method: 'POST', header: { 'x-probe': 'consul' }, interval: '1s' }, consul: { address: agent.address } }, (app) => {
    app.route({
      method: ['GET', 'POST'],
      url: '/probe',
      handler: async (request, reply) => {
        probes.push({ method: request.method, header: request.headers['x-probe'] as string | undefined })
        // Only what we configured passes: a GET, or a POST without the header, would read critical.
        return reply.code(request.method === 'POST' && request.headers['x-probe'] === 'consul' ? 200 : 503).send()
      }
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await eventually(async () => probes.length >= 2, 'two probes')
  t.same(probes[0], { method: 'POST', header: 'consul' })
  t.equal(await consulStatus(agent, 'probed', 'probed-1'), 'passing')
})

// Each probe's handler asks Consul, before answering, what status the probes so far have produced: that
// makes the thresholds observable without guessing at Consul's timing.
async function probedApp (t: { teardown (fn: () => unknown): void }, agent: ConsulAgent, id: string, check: Record<string, unknown>, answer: (n: number) => number): Promise<{ app: FastifyInstance, seen: string[] }> {
  const seen: string[] = []
  let n = 0
  const { app } = await buildApp(t, { service: { name: id, id }, check: { path: '/probe', interval: '1s', ...check }, consul: { address: agent.address } } as never, (app) => {
    app.get('/probe', async (_request, reply) => {
      const status = await agentStatus(agent, id)
      if (status !== undefined) seen.push(status)
      return reply.code(answer(++n)).send()
    })
  })
  return { app, seen }
}

t.test('failuresBeforeCritical: sent and accepted by 1.8.7, which does not honour it (its probes still count)', async (t) => {
  const agent = await startConsul({ t })
  const damped = await probedApp(t, agent, 'damped', { failuresBeforeCritical: 3 }, () => 503)
  const plain = await probedApp(t, agent, 'undamped', {}, () => 503)
  await damped.app.listen({ host: '127.0.0.1', port: 0 })
  await plain.app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(damped.app, 'registered')
  await eventually(async () => damped.seen.length >= 4 && plain.seen.length >= 2, 'four and two probes')
  // The status read at probe n is the agent's after probes 1..n-1. Consul 1.8.7 turns critical at the first
  // failure despite the threshold (the bug hashicorp/consul#10256 describes); later versions read
  // [passing, passing, passing, critical]. Either way it is critical by the threshold.
  t.comment(`agent status at each probe with failuresBeforeCritical 3: ${damped.seen.slice(0, 4).join(', ')}`)
  t.equal(damped.seen[3], 'critical', 'critical by the third failure in a row')
  t.same(plain.seen.slice(0, 2), ['passing', 'critical'], 'without the threshold one failure is enough')
})

t.test('successBeforePassing: a critical instance needs that many successes in a row', async (t) => {
  const agent = await startConsul({ t })
  // Fails its first probe (so Consul marks it critical), then answers 200.
  const damped = await probedApp(t, agent, 'slow-start', { successBeforePassing: 2 }, (n) => n === 1 ? 503 : 200)
  const plain = await probedApp(t, agent, 'fast-start', {}, (n) => n === 1 ? 503 : 200)
  await damped.app.listen({ host: '127.0.0.1', port: 0 })
  await plain.app.listen({ host: '127.0.0.1', port: 0 })
  await eventually(async () => damped.seen.length >= 4 && plain.seen.length >= 3, 'four and three probes')
  t.same(damped.seen.slice(0, 4), ['passing', 'critical', 'critical', 'passing'], 'one success is not enough; the second makes it passing')
  t.same(plain.seen.slice(0, 3), ['passing', 'critical', 'passing'], 'negative control: without the threshold one success is enough')
})

/**
 * A gRPC health server (grpc.health.v1.Health/Check) in a few lines of node:http2, cleartext (h2c) as
 * Consul's check dials it without grpcUseTls: SERVING (1) for `serving`, else NOT_SERVING (2).
 */
async function grpcHealthServer (t: { teardown (fn: () => unknown): void }, serving: string): Promise<{ port: number, asked: string[] }> {
  const asked: string[] = []
  const server: Http2Server = createH2cServer()
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      // A length-prefixed message: 1 flag byte, 4 length bytes, then HealthCheckRequest { string service = 1 }.
      const message = Buffer.concat(chunks).subarray(5)
      const service = message.length > 2 && message[0] === 0x0a ? message.subarray(2, 2 + message[1]!).toString() : ''
      asked.push(`${String(headers[':path'])} ${service}`)
      const status = service === serving ? 1 : 2
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, status]))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return { port: (server.address() as AddressInfo).port, asked }
}

t.test('gRPC check: Consul asks grpc.health.v1.Health/Check on the given port for grpcService', async (t) => {
  const agent = await startConsul({ t })
  const grpc = await grpcHealthServer(t, 'users.v1.Users')
  const good = await buildApp(t, { service: { name: 'grpc-ok', id: 'grpc-ok-1' }, check: { type: 'grpc', port: grpc.port, grpcService: 'users.v1.Users', interval: '1s' }, consul: { address: agent.address } })
  const bad = await buildApp(t, { service: { name: 'grpc-bad', id: 'grpc-bad-1' }, check: { type: 'grpc', port: grpc.port, grpcService: 'orders.v1.Orders', interval: '1s' }, consul: { address: agent.address } })
  for (const { app } of [good, bad]) {
    await app.listen({ host: '127.0.0.1', port: 0 })
    await stateBecomes(app, 'registered')
  }
  t.match(good.app.consul.registration?.check, { type: 'grpc', grpc: `127.0.0.1:${grpc.port}/users.v1.Users` })
  await eventually(async () => grpc.asked.includes('/grpc.health.v1.Health/Check users.v1.Users'), 'Consul asked about users.v1.Users')
  await eventually(async () => (await consulStatus(agent, 'grpc-bad', 'grpc-bad-1')) === 'critical', 'NOT_SERVING reads critical')
  t.equal(await consulStatus(agent, 'grpc-ok', 'grpc-ok-1'), 'passing', 'SERVING reads passing')
  const checks = await (await fetch(`${agent.url}/v1/agent/checks`)).json() as Record<string, { Type?: string, CheckID: string }>
  const ok = Object.values(checks).find((c) => c.CheckID.startsWith('service:grpc-ok-1:'))
  t.equal(ok?.Type, 'grpc', 'Consul runs it as a gRPC check')
})
