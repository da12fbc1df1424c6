import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import healthPlugin from '@reg/fastify-health'
import { startConsul, testMeter } from '@reg/testkit'
import { Type, type Static } from '@sinclair/typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { request } from 'undici'
import consulPlugin, { type ConfigOptions, type ConsulPluginOptions } from '../src/index.js'
import { eventually } from './fixtures/consul-api.js'
import { kvPut, kvTxn } from './fixtures/kv.js'

// Configuration from KV against a real Consul 1.8.7: boot, live reload, refusal (fail static), a wiped
// agent, boots without Consul, restart-required keys, and the option errors.

const Schema = Type.Object({
  pageSize: Type.Integer({ minimum: 1, maximum: 100, default: 50, description: 'an integer from 1 to 100' }),
  greeting: Type.String({ default: 'hello' })
})

// The documented way to type fastify.config: merge the schema's type into ConsulConfig.
declare module '../src/index.js' {
  interface ConsulConfig extends Partial<Static<typeof Schema>> {}
}

interface Built { app: FastifyInstance, lines: string[] }

async function build (t: { teardown (fn: () => unknown): void }, agentAddress: string, config: Partial<ConfigOptions>, more: Partial<ConsulPluginOptions> = {}): Promise<Built> {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (l: string) => { lines.push(l) } } } })
  t.teardown(() => app.close())
  await app.register(healthPlugin, { underPressure: { maxEventLoopDelay: 0 } })
  await app.register(consulPlugin, {
    service: { name: 'users' },
    register: false,
    consul: { address: agentAddress },
    config: { schema: Schema, wait: '5s', ...config },
    ...more
  })
  return { app, lines }
}

const records = (lines: string[]): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>)

t.test('boot: KV read before ready, typed, defaults, frozen; application < service context', async (t) => {
  const agent = await startConsul({ t })
  await kvPut(agent, 'config/application/pageSize', '10')
  await kvPut(agent, 'config/application/greeting', 'hi')
  await kvPut(agent, 'config/users/pageSize', '20')
  const { app } = await build(t, agent.address, {})
  // Already there for plugins registered after ours, before ready().
  t.same(app.config, { pageSize: 20, greeting: 'hi' }, 'converted to the schema\'s types, service over application')
  t.ok(Object.isFrozen(app.config))
  t.throws(() => { (app.config as { pageSize: number }).pageSize = 1 }, TypeError, 'frozen: a handler cannot change it')
  await app.ready()
  t.equal(app.consul.config?.state, 'live')
  t.equal(app.consul.config?.source, 'consul')
  t.equal((await app.inject('/health')).statusCode, 200, 'nothing to warn about')
})

t.test('a good change swaps the whole object and says which paths changed; a bad one is refused and kept', async (t) => {
  const agent = await startConsul({ t })
  await kvPut(agent, 'config/users/pageSize', '20')
  const m = testMeter(t)
  const { app, lines } = await build(t, agent.address, {}, { meterProvider: m.provider })
  await app.ready()
  const before = app.config
  const changes: Array<readonly string[]> = []
  app.consul.config!.on('change', (_c, paths) => changes.push(paths))

  await kvTxn(agent, { 'config/users/pageSize': '30', 'config/users/greeting': 'hey' })
  await eventually(async () => app.config.pageSize === 30, 'the new page size')
  t.same(app.config, { pageSize: 30, greeting: 'hey' })
  t.same(changes, [['greeting', 'pageSize']], 'one change event for one transaction, with both paths')
  t.same(before, { pageSize: 20, greeting: 'hello' }, 'the old object is untouched: readers holding it see no mix')
  t.equal(await m.value('reg_config_reloads'), 1)

  await kvPut(agent, 'config/users/pageSize', '500')
  await eventually(async () => app.consul.config?.refused, 'the refusal')
  t.match(app.consul.config?.refused, { key: 'config/users/pageSize', field: 'pageSize', expected: 'an integer from 1 to 100' })
  t.same(app.config, { pageSize: 30, greeting: 'hey' }, 'the last good configuration stays')
  // Another key changing while the bad value stays is still refused, with no second log line.
  await kvPut(agent, 'config/users/greeting', 'yo')
  await kvPut(agent, 'config/application/other', 'x')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(app.config.greeting, 'hey', 'nothing of a refused read is applied, not even its valid keys')
  const health = await eventually(async () => {
    const res = await app.inject('/health')
    return res.statusCode === 429 ? res.json() as { checks: Record<string, { status: string, output: string }> } : undefined
  }, '/health warning')
  t.equal(health.checks.config?.status, 'warning')
  t.match(health.checks.config?.output, 'config/users/pageSize', '/health names the key')
  const refusedLines = records(lines).filter((r) => r.msg === 'configuration change refused; keeping the last good configuration')
  t.equal(refusedLines.length, 1, 'one log line')
  t.equal(refusedLines[0]?.key, 'config/users/pageSize')
  t.equal(await m.value('reg_config_refusals', { key: 'config/users/pageSize' }), 1, 'one reg_config_refusals')

  // Negative control: fixing the value applies the whole current KV (greeting "yo" too) and clears the warning.
  await kvPut(agent, 'config/users/pageSize', '40')
  await eventually(async () => app.config.pageSize === 40, 'the fixed value')
  t.same(app.config, { pageSize: 40, greeting: 'yo', other: 'x' }, 'keys outside the schema pass through unless it sets additionalProperties: false')
  t.equal(app.consul.config?.refused, undefined)
  await eventually(async () => (await app.inject('/health')).statusCode === 200, '/health passing again')
  t.equal(await m.value('reg_config_stale'), 0)
})

t.test('reload under load: every request reads one object, old or new, never a mix', async (t) => {
  const agent = await startConsul({ t })
  await kvTxn(agent, { 'config/users/a': '0', 'config/users/b': '0' })
  const schema = Type.Object({ a: Type.Integer(), b: Type.Integer() })
  const { app } = await build(t, agent.address, { schema })
  app.get('/pair', async () => {
    // What a handler does: read the configuration once, then use it across awaits.
    const config = app.config as unknown as { a: number, b: number }
    const a = config.a
    await new Promise((resolve) => setImmediate(resolve))
    return { a, b: config.b }
  })
  const port = await app.listen({ port: 0, host: '127.0.0.1' }).then(() => (app.server.address() as { port: number }).port)
  const run = { stop: false }
  let requests = 0
  const mixes: Array<{ a: number, b: number }> = []
  const seen = new Set<number>()
  const load = Array.from({ length: 8 }, async () => {
    while (!run.stop) {
      const res = await request(`http://127.0.0.1:${port}/pair`)
      const body = await res.body.json() as { a: number, b: number }
      requests++
      seen.add(body.a)
      if (body.a !== body.b) mixes.push(body)
    }
  })
  for (let n = 1; n <= 20; n++) {
    await kvTxn(agent, { 'config/users/a': String(n), 'config/users/b': String(n) })
    await eventually(async () => (app.config as unknown as { a: number }).a === n, `version ${n}`)
  }
  run.stop = true
  await Promise.all(load)
  t.comment(`${requests} requests across 20 reloads; ${seen.size} versions seen`)
  t.ok(seen.size > 5, 'the requests did span reloads')
  t.same(mixes, [], 'no request read a and b from different versions')
})

t.test('the agent wiped (a -dev restart): the configuration is kept, and watched again', async (t) => {
  const agent = await startConsul({ t })
  await kvPut(agent, 'config/users/pageSize', '20')
  const { app, lines } = await build(t, agent.address, {})
  await app.ready()
  const states: string[] = []
  app.consul.config!.on('state', (s) => states.push(s))
  await agent.restart()
  await eventually(async () => app.consul.config?.refused?.key === 'config/', 'the empty prefix refused').catch((e) => { t.comment(lines.join('')); throw e })
  t.equal(app.config.pageSize, 20, 'kept through the wipe')
  t.equal(app.consul.config?.state, 'live', 'reading Consul again')
  await kvPut(agent, 'config/users/pageSize', '25')
  await eventually(async () => app.config.pageSize === 25, 'a change after the wipe')
  t.equal(app.consul.config?.refused, undefined)
  t.match(states, ['stale', 'live'], 'stale while the agent was away')
})

t.test('boot without Consul: failFast (default) fails ready(); failFast false boots from the last-known-good file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'reg-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'config.json')
  const agent = await startConsul({ t })
  await kvPut(agent, 'config/users/pageSize', '20')
  const first = await build(t, agent.address, { failFast: false, lastKnownGoodFile: file })
  await first.app.ready()
  await kvPut(agent, 'config/users/pageSize', '33')
  await eventually(async () => JSON.parse(await readFile(file, 'utf8').catch(() => '{}')).values?.pageSize === '33', 'the file follows good changes')
  await first.app.close()
  await agent.stop()

  await t.rejects(build(t, agent.address, {}), { code: 'FST_REG_CONFIG_UNAVAILABLE' }, 'failFast true: a coded error, no boot')
  await t.rejects(build(t, agent.address, { failFast: false, lastKnownGoodFile: join(dir, 'missing.json') }), { code: 'FST_REG_CONFIG_UNAVAILABLE' }, 'no file to stand in')

  const second = await build(t, agent.address, { failFast: false, lastKnownGoodFile: file })
  await second.app.ready()
  t.equal(second.app.config.pageSize, 33, 'booted from the file')
  t.equal(second.app.consul.config?.source, 'file')
  t.equal(second.app.consul.config?.state, 'stale')
  const health = await eventually(async () => {
    const res = await second.app.inject('/health')
    return res.statusCode === 429 ? res.json() as { checks: Record<string, { output: string }> } : undefined
  }, 'a stale warning')
  t.match(health.checks.config?.output, 'last-known-good')

  await agent.start()
  await kvPut(agent, 'config/users/pageSize', '44')
  await eventually(async () => second.app.config.pageSize === 44, 'Consul back: live again')
  t.equal(second.app.consul.config?.source, 'consul')
})

t.test('invalid at boot: FST_REG_CONFIG_INVALID naming the KV key; YAML documents too', async (t) => {
  const agent = await startConsul({ t })
  await kvPut(agent, 'config/application/pageSize', '0')
  const err = await build(t, agent.address, {}).then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_REG_CONFIG_INVALID')
  t.match(err?.message, 'config/application/pageSize', 'the key as written')
  await kvPut(agent, 'config/users/data', 'pageSize: [')
  const yamlErr = await build(t, agent.address, { format: 'YAML' }).then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(yamlErr?.code, 'FST_REG_CONFIG_INVALID')
  t.match(yamlErr?.message, 'config/users/data')
  await kvPut(agent, 'config/users/data', 'pageSize: 12\ngreeting: yaml')
  const { app } = await build(t, agent.address, { format: 'YAML' })
  t.same(app.config, { pageSize: 12, greeting: 'yaml' }, 'YAML, typed')
  await kvPut(agent, 'config/users/data', 'pageSize: 13\ngreeting: [')
  await eventually(async () => app.consul.config?.refused, 'a broken document refused')
  t.equal(app.consul.config?.refused?.key, 'config/users/data')
  t.equal(app.config.pageSize, 12)
})

t.test('restart-required keys: reported, never applied; the other keys apply', async (t) => {
  const agent = await startConsul({ t })
  await kvPut(agent, 'config/users/pageSize', '20')
  const { app, lines } = await build(t, agent.address, { restartRequired: ['greeting'] })
  await app.ready()
  const pending: Array<readonly string[]> = []
  app.consul.config!.on('restart', (paths) => pending.push(paths))
  await kvTxn(agent, { 'config/users/pageSize': '21', 'config/users/greeting': 'new' })
  await eventually(async () => app.config.pageSize === 21, 'the page size')
  t.equal(app.config.greeting, 'hello', 'the restart-required value stays the boot one')
  t.same(app.consul.config?.pendingRestart, ['greeting'])
  t.same(pending, [['greeting']])
  t.ok(records(lines).some((r) => r.msg === 'configuration changed where a restart is required; not applied until then'))
  await kvPut(agent, 'config/users/greeting', 'hello')
  await eventually(async () => app.consul.config?.pendingRestart.length === 0, 'back to the boot value')
})

t.test('invalid config options fail ready() with FST_REG_CONFIG_INVALID_OPTION naming the field', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(consulPlugin, { service: { name: 'users' }, config: { schema: Schema, format: 'XML' as 'YAML' } })
  const err = await app.ready().then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_REG_CONFIG_INVALID_OPTION')
  t.match(err?.message, 'config.format')
})
