import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { get as httpsGet } from 'node:https'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { KEEP_ALIVE_TIMEOUT, REQUEST_TIMEOUT } from '../src/index.js'

// serve() as a real process (the built fixture, which keeps tap's NODE_OPTIONS so its coverage counts): what
// each sample app's server.ts runs. The apps' own server tests run it again with Consul behind it.

const FIXTURE = fileURLToPath(new URL('fixtures/serve-app.js', import.meta.url))
const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url))

interface Run {
  child: ReturnType<typeof spawn>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stderr: () => string
  logs: () => Array<Record<string, unknown>>
  /** Resolves with the first log record that `match` accepts. */
  until: (match: (r: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
}

function start (t: Test, env: Record<string, string>): Run {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`pnpm build\` first (pnpm test does)`)
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PORT|HOST|ADMIN_PORT|ADMIN_HOST|SERVICE_ID|LOG_LEVEL|CONSUL_.*|FIXTURE_.*)$/.test(name)))
  const child = spawn(process.execPath, [FIXTURE], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters: Array<() => void> = []
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; for (const w of waiters) w() })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await exited
  })
  const logs = (): Array<Record<string, unknown>> => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)
  const until = async (match: (r: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => await new Promise((resolve, reject) => {
    const check = (): void => { const found = logs().find(match); if (found !== undefined) resolve(found) }
    waiters.push(check)
    check()
    exited.then(() => { check(); reject(new Error(`exited before the log line; stdout: ${stdout}; stderr: ${stderr}`)) }, reject)
  })
  return { child, exited, stderr: () => stderr, logs, until }
}

t.test('listens with the timeouts, answers, and on SIGTERM runs the app\'s shutdown and exits 0', async (t) => {
  const run = start(t, {})
  const started = await run.until((r) => r.msg === 'started')
  t.equal(started.keepAliveTimeout, KEEP_ALIVE_TIMEOUT, 'keep-alive outlasts the proxies in front')
  t.equal(started.requestTimeout, REQUEST_TIMEOUT, 'a whole request must arrive within the request timeout')
  const res = await fetch(`http://127.0.0.1:${String(started.port)}/ping`)
  t.same(await res.json(), { pong: true })

  run.child.kill('SIGTERM')
  t.same(await run.exited, { code: 0, signal: null }, 'a graceful shutdown exits 0')
  const logs = run.logs()
  t.ok(logs.some((r) => r.msg === 'shutting down' && r.signal === 'SIGTERM'), 'the signal is logged')
  t.ok(logs.some((r) => r.msg === 'own shutdown'), 'the app\'s own shutdown ran')
  t.ok(logs.every((r) => typeof r.level === 'number' && typeof r.time === 'number'), 'every stdout line is a pino JSON record')
  t.equal(run.stderr(), '')
})

t.test('without a shutdown option, SIGINT closes the server and exits 0', async (t) => {
  const run = start(t, { FIXTURE_SHUTDOWN: 'default' })
  await run.until((r) => r.msg === 'started')
  run.child.kill('SIGINT')
  t.same(await run.exited, { code: 0, signal: null })
  t.notOk(run.logs().some((r) => r.msg === 'own shutdown'), 'negative control: the default, not the fixture\'s own, ran')
})

t.test('a bad environment: one plain line on stderr naming every bad variable, exit 1, nothing started', async (t) => {
  const run = start(t, { PORT: 'abc', LOG_LEVEL: 'loud' })
  t.same(await run.exited, { code: 1, signal: null })
  t.equal(run.stderr(), 'kit-fixture: invalid environment: PORT must be an integer from 0 to 65535, got "abc"; ' +
    'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n')
  t.same(run.logs(), [], 'no logger yet, so nothing on stdout')
})

t.test('a port in use is a failed start: logged at fatal with the cause, exit 1', async (t) => {
  const first = start(t, {})
  const { port } = await first.until((r) => r.msg === 'started')
  const clash = start(t, { PORT: String(port), ADMIN_PORT: '0' })
  t.same(await clash.exited, { code: 1, signal: null })
  t.match(clash.logs().find((r) => r.msg === 'could not start'), { level: 60, err: { code: 'EADDRINUSE' } })
  t.notOk(clash.logs().some((r) => r.msg === 'started'), 'started() is not called for a failed start')
})

/** A port nothing listens on (bound by the OS, then released). */
async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('the admin listener: its own routes on ADMIN_PORT, none of the app\'s; open while the app closes, then closed', async (t) => {
  const run = start(t, {})
  const ready = await run.until((r) => r.msg === 'admin listener ready')
  const { port } = await run.until((r) => r.msg === 'started')
  const admin = String(ready.url)
  t.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/, 'loopback by default')
  const get = async (url: string): Promise<number> => {
    const res = await fetch(url)
    await res.arrayBuffer()
    return res.status
  }
  t.equal(await get(`${admin}/admin-ping`), 200, 'the admin route on the admin port')
  t.equal(await get(`http://127.0.0.1:${String(port)}/admin-ping`), 404, 'and not on the public one')
  t.equal(await get(`${admin}/ping`), 404, 'the app\'s route not on the admin port')

  run.child.kill('SIGTERM')
  await run.until((r) => r.msg === 'closing')
  t.equal(await get(`${admin}/admin-ping`), 200, 'the admin port still answers while the app closes')
  t.same(await run.exited, { code: 0, signal: null })
  t.equal(await get(`${admin}/admin-ping`).catch((err: Error) => (err.cause as NodeJS.ErrnoException).code), 'ECONNREFUSED', 'and closes with it')
})

t.test('bound before prepare: 503 "starting" until the app is built, then served', async (t) => {
  const adminPort = await freePort()
  const run = start(t, { FIXTURE_PREPARE: 'slow', ADMIN_PORT: String(adminPort) })
  const url = `http://127.0.0.1:${adminPort}/admin-ping`
  let early: Response | undefined
  const deadline = Date.now() + 10_000
  while (early === undefined && Date.now() < deadline) {
    early = await fetch(url).catch(() => undefined)
    if (early === undefined) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(early?.status, 503, 'during prepare')
  t.equal(early?.headers.get('retry-after'), '1')
  await early?.arrayBuffer()
  await run.until((r) => r.msg === 'started')
  t.equal((await fetch(url)).status, 200, 'once the app is built')
})

t.test('an admin port in use is a failed start, before prepare and before the app: logged at fatal, exit 1', async (t) => {
  const holder = createServer().listen(0, '127.0.0.1')
  await once(holder, 'listening')
  t.teardown(() => { holder.close() })
  const run = start(t, { ADMIN_PORT: String((holder.address() as AddressInfo).port), FIXTURE_PREPARE: 'fail' })
  t.same(await run.exited, { code: 1, signal: null })
  t.match(run.logs().find((r) => r.msg === 'could not start'), { level: 60, listener: 'admin', err: { code: 'EADDRINUSE' } })
  t.notOk(run.logs().some((r) => r.err !== undefined && (r.err as { code?: string }).code === 'FIXTURE_NOT_READY'), 'prepare never ran')
})

t.test('prepare rejecting is a failed start: logged at fatal, exit 1, the admin port released', async (t) => {
  const run = start(t, { FIXTURE_PREPARE: 'fail' })
  // Exiting at all proves the admin socket was closed: an open one would keep the process alive.
  t.same(await run.exited, { code: 1, signal: null })
  t.match(run.logs().find((r) => r.msg === 'could not start'), { level: 60, err: { code: 'FIXTURE_NOT_READY' } })
  t.notOk(run.logs().some((r) => r.msg === 'started'))
})

t.test('prepare\'s https: the public port serves TLS, the admin port plain HTTP; a failed start closes what prepare opened', async (t) => {
  const dir = t.testdir({})
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')])
  const tls = { FIXTURE_PREPARE: 'https', FIXTURE_KEY: join(dir, 'key.pem'), FIXTURE_CERT: join(dir, 'cert.pem') }
  const run = start(t, tls)
  const ready = await run.until((r) => r.msg === 'admin listener ready')
  const { port } = await run.until((r) => r.msg === 'started')
  const body = await new Promise<string>((resolve, reject) => {
    httpsGet({ host: '127.0.0.1', port: Number(port), path: '/ping', rejectUnauthorized: false }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk }).on('end', () => resolve(text))
    }).on('error', reject)
  })
  t.same(JSON.parse(body), { pong: true }, 'HTTPS on the public port')
  t.equal((await fetch(`${String(ready.url)}/admin-ping`)).status, 200, 'plain HTTP on the admin port')

  const clash = start(t, { ...tls, PORT: String(port), ADMIN_PORT: '0' })
  t.same(await clash.exited, { code: 1, signal: null })
  t.match(clash.logs().find((r) => r.msg === 'could not start'), { err: { code: 'EADDRINUSE' } })
  t.ok(clash.logs().some((r) => r.msg === 'prepared closed'), 'what prepare opened is closed')
})
