import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
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
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PORT|HOST|SERVICE_ID|LOG_LEVEL|CONSUL_.*|FIXTURE_.*)$/.test(name)))
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
  const clash = start(t, { PORT: String(port) })
  t.same(await clash.exited, { code: 1, signal: null })
  t.match(clash.logs().find((r) => r.msg === 'could not start'), { level: 60, err: { code: 'EADDRINUSE' } })
  t.notOk(clash.logs().some((r) => r.msg === 'started'), 'started() is not called for a failed start')
})
