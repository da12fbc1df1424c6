import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { startConsul } from '../src/index.js'

async function register (url: string, body: object, token?: string): Promise<number> {
  const res = await fetch(`${url}/v1/agent/service/register`, {
    method: 'PUT',
    headers: token ? { 'x-consul-token': token } : {},
    body: JSON.stringify(body)
  })
  await res.arrayBuffer()
  return res.status
}

async function services (url: string, name: string, token?: string): Promise<Array<{ Service: { ID: string, Port: number } }>> {
  const res = await fetch(`${url}/v1/health/service/${name}`, { headers: token ? { 'x-consul-token': token } : {} })
  return await res.json() as Array<{ Service: { ID: string, Port: number } }>
}

t.test('a dev agent on free loopback ports: register, read back, restart loses state', async (t) => {
  const agent = await startConsul({ t })
  t.match(agent.address, /^127\.0\.0\.1:\d+$/)
  t.equal(agent.url, `http://${agent.address}`)

  t.equal(await register(agent.url, { Name: 'kit', ID: 'kit-1', Port: 1234 }), 200)
  const found = await services(agent.url, 'kit')
  t.same(found.map((e) => [e.Service.ID, e.Service.Port]), [['kit-1', 1234]])

  await agent.restart()
  t.same(await services(agent.url, 'kit'), [], 'a -dev restart wipes every registration')
  t.equal(await register(agent.url, { Name: 'kit', ID: 'kit-2' }), 200, 'the restarted agent serves on the same port')

  await agent.kill()
  await t.rejects(fetch(`${agent.url}/v1/status/leader`), 'a killed agent no longer answers')
  await agent.start()
  t.same(await services(agent.url, 'kit'), [], 'start() after kill() comes back empty')
  t.match(agent.log(), /Consul agent running/, 'log() returns the captured agent output')
})

t.test('pause() black-holes the agent until resume()', async (t) => {
  const agent = await startConsul({ t })
  await agent.pause()
  await t.rejects(fetch(`${agent.url}/v1/status/leader`, { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' })
  agent.resume()
  const res = await fetch(`${agent.url}/v1/status/leader`)
  t.equal(res.status, 200)
  await res.arrayBuffer()
})

t.test('ACL mode: default deny rejects an anonymous register, the master token passes', async (t) => {
  const masterToken = '3f6c2d1e-8a4b-4c2d-9e1f-0a1b2c3d4e5f'
  const agent = await startConsul({ t, acl: { masterToken } })
  t.equal(await register(agent.url, { Name: 'locked' }), 403)
  t.equal(await register(agent.url, { Name: 'locked' }, masterToken), 200)
  t.same(await services(agent.url, 'locked'), [], 'denied reads come back empty, not 403')
  t.equal((await services(agent.url, 'locked', masterToken)).length, 1)
})

t.test('stop() is idempotent and leaves no process behind', async (t) => {
  const agent = await startConsul({ config: 'disable_update_check = true' })
  await agent.stop()
  await agent.stop()
  await t.rejects(fetch(`${agent.url}/v1/status/leader`))
})

t.test('an agent that cannot become ready fails start() with its log, and leaves no process', async (t) => {
  await t.rejects(startConsul({ readyTimeout: 1 }), { message: /not ready[\s\S]*--- consul log ---/ })
  await t.rejects(startConsul({ args: ['-no-such-flag'] }), { message: /exited during start[\s\S]*no-such-flag/ })
})

t.test('a port taken before the agent binds it: new ports a bounded number of times, then the clash and its log', async (t) => {
  const holder = createServer().listen(0, '127.0.0.1')
  await once(holder, 'listening')
  t.teardown(() => holder.close())
  // A fixed httpPort that stays taken clashes on every attempt (freePorts' race gets new ports instead),
  // so the retries run out and the clash is reported, not hidden behind a timeout.
  const started = performance.now()
  await t.rejects(startConsul({ httpPort: (holder.address() as AddressInfo).port }), { message: /exited during start[\s\S]*address already in use/ })
  t.ok(performance.now() - started < 30_000, 'gives up, well before any readiness timeout')
})

t.test('with a failing test, teardown prints the agent log as a comment and stops the agent', async (t) => {
  const teardowns: Array<() => unknown> = []
  const comments: unknown[] = []
  const agent = await startConsul({ t: { teardown: (fn) => teardowns.push(fn), passing: () => false, comment: (...a) => comments.push(...a) } })
  for (const fn of teardowns) await fn()
  t.match(String(comments[0]), /consul agent http:\/\/127\.0\.0\.1:\d+ log:[\s\S]*Consul agent running/)
  await t.rejects(fetch(`${agent.url}/v1/status/leader`), 'stopped by the teardown')
})

t.test('pause() on an agent that is not running is a no-op', async (t) => {
  const agent = await startConsul({ t })
  await agent.kill()
  await agent.pause()
  agent.resume()
  t.notOk(agent.running())
})
