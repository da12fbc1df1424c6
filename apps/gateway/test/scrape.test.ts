import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ensureVictoriaMetrics, freePorts, projectRoot } from '@reg/testkit'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { removeCheck } from './fixtures/consul.js'
import { loadUntil, startFleet } from './fixtures/fleet.js'

// deploy/prometheus.yml, used as it is by a real Prometheus-compatible scraper (Debian's victoria-metrics,
// which has consul_sd_configs) against a real Consul agent and the real app processes: it finds
// user-service ×3 and the gateway through Consul and reads their /metrics on their admin listeners, at
// the registered address and the port in their meta `metrics_port` (the public ports serve no /metrics).

const run = promisify(execFile)
const CONFIG = join(projectRoot, 'deploy', 'prometheus.yml')

interface Target { labels: Record<string, string>, health: string, lastError?: string, scrapeUrl: string }
interface Sample { metric: Record<string, string>, value: [number, string] }

const vmBin = await ensureVictoriaMetrics({ log: (line) => t.comment(line) })

t.test('deploy/prometheus.yml passes the scraper\'s own config check; an unknown key does not', async (t) => {
  const dryRun = (file: string): Promise<unknown> => run(vmBin, [`-promscrape.config=${file}`, '-promscrape.config.dryRun', '-loggerLevel=ERROR'])
  await t.resolves(dryRun(CONFIG))
  const dir = t.testdir({ 'bad.yml': (await readFile(CONFIG, 'utf8')).replace('global:\n', 'global:\n  evaluation_interval: 15s\n') })
  const err = await dryRun(join(dir, 'bad.yml')).then(() => undefined, (e: unknown) => e)
  t.ok(err, 'a key it does not know is refused (negative control)')
  t.match((err as { stderr?: string }).stderr, /evaluation_interval/)
})

t.test('found through Consul: 4 targets up; after load and a kill -9, the metrics say what happened', async (t) => {
  const fleet = await startFleet(t, 'scrape')
  const dir = await mkdtemp(join(tmpdir(), 'scrape-vm-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // The file as deployed, pointed at this test's agent and scraping every second.
  const config = parse(await readFile(CONFIG, 'utf8')) as { global: Record<string, string>, scrape_configs: Array<{ consul_sd_configs: Array<{ server: string }> }> }
  config.global.scrape_interval = '1s'
  config.global.scrape_timeout = '1s'
  for (const sd of config.scrape_configs.flatMap((c) => c.consul_sd_configs)) sd.server = fleet.agent.address
  await writeFile(join(dir, 'prometheus.yml'), stringify(config))

  const [port] = await freePorts(1) as [number]
  const vm = spawn(vmBin, [
    `-promscrape.config=${join(dir, 'prometheus.yml')}`, '-promscrape.consulSDCheckInterval=1s',
    // Its default of 30 s hides fresh samples from instant queries.
    '-search.latencyOffset=1s', `-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${join(dir, 'data')}`,
    '-loggerLevel=ERROR'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let vmStderr = ''
  vm.stderr.setEncoding('utf8').on('data', (chunk: string) => { vmStderr += chunk })
  const vmExited = once(vm, 'exit')
  t.teardown(async () => {
    if (vm.exitCode !== null) return
    vm.kill('SIGTERM')
    await vmExited
  })
  const api = `http://127.0.0.1:${port}`

  async function eventually<T> (what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs
    let last: T | undefined
    while (Date.now() < deadline) {
      if (vm.exitCode !== null) throw new Error(`victoria-metrics exited: ${vmStderr}`)
      last = await read().catch(() => undefined)
      if (last !== undefined && ok(last)) return last
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`)
  }
  const targets = async (): Promise<Target[]> => {
    const body = await (await fetch(`${api}/api/v1/targets`)).json() as { data: { activeTargets: Target[] } }
    return body.data.activeTargets
  }
  const query = async (q: string): Promise<Sample[]> => {
    const body = await (await fetch(`${api}/api/v1/query?${new URLSearchParams({ query: q })}`)).json() as { data: { result: Sample[] } }
    return body.data.result
  }
  const scalar = (samples: Sample[]): number => samples.length === 0 ? NaN : Number(samples[0]!.value[1])

  const up = await eventually('4 targets up', targets, (ts) => ts.filter((x) => x.health === 'up').length === 4)
  t.same(up.map((x) => x.labels.consul_service_id).sort(), [fleet.gatewayId, ...fleet.ids].sort(), 'user-service ×3 and the gateway, by Consul service id')
  t.same([...new Set(up.map((x) => x.labels.consul_service))].sort(), ['gateway', 'user-service'])
  t.notOk(up.some((x) => x.labels.consul_service === 'consul'), 'Consul\'s own entry is dropped')
  // Where each was scraped: its admin port, as its registration's meta says, not the port it serves on.
  const catalog = await (await fetch(`${fleet.agent.url}/v1/agent/services`)).json() as Record<string, { Port: number, Meta: Record<string, string> }>
  for (const target of up) {
    const registered = catalog[target.labels.consul_service_id!]!
    const url = new URL(target.scrapeUrl)
    t.equal(url.port, registered.Meta.metrics_port, `${target.labels.consul_service_id} scraped at its metrics_port`)
    t.not(Number(url.port), registered.Port, 'not at its registered (public) port')
    const publicMetrics = await fetch(`http://${url.hostname}:${registered.Port}/metrics`)
    await publicMetrics.arrayBuffer()
    t.equal(publicMetrics.status, 404, 'whose /metrics is gone (so without the relabel the target would be down)')
  }

  const health = await eventually('reg_health_status from every app', () => query('reg_health_status'), (s) => s.length === 4)
  t.same(health.map((s) => s.metric.consul_service_id).sort(), [fleet.gatewayId, ...fleet.ids].sort(), 'reg_health_status present for every app')
  t.ok(health.every((s) => s.value[1] === '0'), 'all passing')

  // Load through the gateway; one replica dies without a word to Consul (whose check is removed, so Consul
  // keeps listing it: only the gateway's ejection can route around it).
  const victim = fleet.replicas[1]!
  await removeCheck(fleet.agent.url, fleet.ids[1]!)
  let stopLoad!: () => void
  const load = loadUntil(fleet.base, new Promise<void>((resolve) => { stopLoad = resolve }))
  await new Promise((resolve) => setTimeout(resolve, 500))
  victim.child.kill('SIGKILL')
  t.same(await victim.exited, { code: null, signal: 'SIGKILL' })
  const ejections = await eventually('an ejection, scraped',
    () => query(`sum(reg_dispatcher_ejections_total{consul_service_id="${fleet.gatewayId}"})`), (s) => scalar(s) >= 1)
  stopLoad()
  const statuses = await load
  t.same([...statuses.keys()], [200], `every request under load succeeded (${[...statuses.values()][0]} requests)`)
  t.ok(scalar(ejections) >= 1, 'reg_dispatcher_ejections_total >= 1')
  const requests = await eventually('the requests, scraped',
    () => query(`sum(reg_dispatcher_requests_total{consul_service_id="${fleet.gatewayId}",service="user-service",outcome="success"})`), (s) => scalar(s) > 0)
  t.ok(scalar(requests) > 0, `reg_dispatcher_requests_total{outcome="success"} = ${scalar(requests)}`)

  const consulPassing = (await (await fetch(`${fleet.agent.url}/v1/health/service/user-service?passing`)).json() as unknown[]).length
  const seen = await eventually('the gateway\'s view to match Consul\'s',
    () => query(`reg_discovery_instances{consul_service_id="${fleet.gatewayId}",service="user-service",status="passing"}`), (s) => scalar(s) === consulPassing)
  t.equal(scalar(seen), consulPassing, `reg_discovery_instances{status="passing"} equals what Consul says (${consulPassing})`)
  const retries = await query(`sum(reg_dispatcher_retries_total{consul_service_id="${fleet.gatewayId}"})`)
  t.ok(scalar(retries) >= 1, 'the requests the dead replica refused were retried')
  const latency = await query(`sum(reg_dispatcher_request_duration_seconds_count{consul_service_id="${fleet.gatewayId}"})`)
  t.ok(scalar(latency) > 0, 'and timed')

  const survivors = await eventually('the killed replica\'s target down', targets, (ts) => ts.some((x) => x.labels.consul_service_id === fleet.ids[1] && x.health === 'down'))
  t.equal(survivors.filter((x) => x.health === 'up').length, 3, 'the scraper sees it down too')
})
