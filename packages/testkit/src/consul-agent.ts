import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ensureConsul } from './ensure-consul.js'
import { freePorts } from './free-ports.js'

/** The part of a tap `t` the testkit needs; keeps tap out of the testkit's runtime dependencies. */
export interface TestLike {
  teardown (fn: () => unknown): void
  passing (): boolean
  comment (...args: unknown[]): void
}

export interface StartConsulOptions {
  /** Turn ACLs on with default-deny; the master token is also the agent's own token. */
  acl?: { masterToken: string }
  /** Extra HCL appended to the agent's config file. */
  config?: string
  /** Fixed HTTP port (the `consul` CLI uses 8500); free ports are picked otherwise. */
  httpPort?: number
  /** Registers stop() on teardown and prints the agent's log there when the test failed. */
  t?: TestLike
  /** Milliseconds to wait for a leader. Default 30 s. */
  readyTimeout?: number
  /** Extra CLI arguments, e.g. `-ui`. */
  args?: string[]
}

export interface ConsulAgent {
  /** host:port of the HTTP API, as CONSUL_HTTP_ADDR takes it. */
  readonly address: string
  /** http://host:port */
  readonly url: string
  readonly httpPort: number
  readonly nodeName: string
  /** The captured stdout/stderr of every run of this agent. */
  log (): string
  /** Graceful stop (SIGINT, then SIGKILL after 5 s). Idempotent. */
  stop (): Promise<void>
  /** Kill and start again on the same ports. A -dev agent keeps nothing: all registrations are lost. */
  restart (): Promise<void>
  /** SIGKILL without restart: the agent vanishes mid-flight. */
  kill (): Promise<void>
  /** Start again after kill()/stop(), on the same ports, with empty state. */
  start (): Promise<void>
  /**
   * SIGSTOP: the agent keeps its sockets but never answers (a black hole). Resolves once the kernel
   * reports the process stopped: signal delivery is asynchronous, and a request sent in between
   * could still be answered.
   */
  pause (): Promise<void>
  /** SIGCONT after pause(). */
  resume (): void
  /** Whether the process is up (it may still be electing a leader). */
  running (): boolean
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // 'exit' covers normal ends and uncaught errors; the watchdog below covers SIGKILL of this process.
  process.on('exit', () => {
    /* c8 ignore next -- runs while the process exits, after coverage has been collected */
    for (const child of live) child.kill('SIGKILL')
  })
}

/**
 * A detached shell that kills the agent once this process is gone. Node cannot set PDEATHSIG, and an
 * agent that outlives a crashed test run would hold its ports and CPU until someone notices.
 */
export function watchdog (agentPid: number): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${agentPid} 2>/dev/null; do sleep 1; done; kill -9 ${agentPid} 2>/dev/null`
  const dog = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' })
  dog.unref()
}

/** Until /proc says `pid` is stopped (state T); without /proc (macOS), a short grace period instead. */
/* c8 ignore start -- polls the kernel's view, so which branches run is timing; pause()'s test asserts the outcome */
async function stopped (pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    let stat: string
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    } catch {
      await sleep(50)
      return
    }
    // "pid (comm) T …": the state letter follows the parenthesised command name.
    if (/^[Tt]/.test(stat.replace(/^.*\) /s, ''))) return
    await sleep(5)
  }
}
/* c8 ignore stop */

export async function leaderReady (url: string, token: string | undefined, nodeName: string, deadline: number, gaveUp: AbortSignal): Promise<void> {
  const headers: Record<string, string> = token ? { 'x-consul-token': token } : {}
  let last = 'no answer'
  while (Date.now() < deadline && !gaveUp.aborted) {
    try {
      const leader = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(1000) })
      const body = await leader.text()
      if (leader.ok && body.length > 2) {
        // The node's own serfHealth must be in the catalog too, or `?passing` hides every service.
        const node = await fetch(`${url}/v1/health/node/${nodeName}`, { headers, signal: AbortSignal.timeout(1000) })
        const checks = await node.json() as Array<{ CheckID: string, Status: string }>
        if (checks.some((c) => c.CheckID === 'serfHealth' && c.Status === 'passing')) return
        /* c8 ignore next 4 -- which step is still pending when we poll depends on election timing */
        last = 'node not yet in catalog'
      } else {
        last = `leader=${body}`
      }
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(50)
  }
  throw new Error(`consul agent at ${url} not ready: ${last}`)
}

/** One agent process: its ports, its config, and how it is launched. Shared by dev agents and clusters. */
export interface AgentSpec {
  bin: string
  /** Holds the config file (and the data dir of non-dev agents). */
  dir: string
  nodeName: string
  httpPort: number
  token: string | undefined
  hcl: string
  /** Everything after `consul`. */
  args: string[]
  readyTimeout?: number
  /** Skip the leader/catalog wait in start(); a cluster waits for all members together. */
  lazy?: boolean
}

export function aclConfig (token: string | undefined): string {
  // `master` rather than `initial_management`: 1.8 rejects the newer key; current versions accept both.
  return token ? `acl {\n  enabled = true\n  default_policy = "deny"\n  tokens {\n    master = "${token}"\n    agent = "${token}"\n  }\n}\n` : ''
}

export async function startConsul (opts: StartConsulOptions = {}): Promise<ConsulAgent> {
  const bin = await ensureConsul()
  const dir = await mkdtemp(join(tmpdir(), 'reg-consul-'))
  // freePorts() can only say the ports were free a moment ago: under a busy suite another process may
  // bind one before the agent does (a clean-clone run lost a test to "bind: address already in use" on
  // the WAN Serf port). The agent then exits at once; new ports, a bounded number of times.
  return await startWithFreshPorts(bin, dir, opts, 1)
}

async function startWithFreshPorts (bin: string, dir: string, opts: StartConsulOptions, attempt: number): Promise<ConsulAgent> {
  try {
    return await startOn(bin, dir, opts)
  } catch (err) {
    if (attempt < PORT_ATTEMPTS && /address already in use/.test((err as Error).message)) return await startWithFreshPorts(bin, dir, opts, attempt + 1)
    throw err
  }
}

/** How many sets of ports startConsul() tries before it gives up on a port clash. */
const PORT_ATTEMPTS = 3

async function startOn (bin: string, dir: string, opts: StartConsulOptions): Promise<ConsulAgent> {
  const [httpPort, serfLan, serfWan, server] = await freePorts(4) as [number, number, number, number]
  const port = opts.httpPort ?? httpPort
  const token = opts.acl?.masterToken
  const spec: AgentSpec = {
    bin,
    dir,
    nodeName: `reg-${port}`,
    httpPort: port,
    token,
    hcl: aclConfig(token) + (opts.config ? opts.config + '\n' : ''),
    readyTimeout: opts.readyTimeout,
    args: [
      'agent', '-dev', '-node', `reg-${port}`,
      '-bind', '127.0.0.1', '-client', '127.0.0.1',
      '-http-port', String(port), '-serf-lan-port', String(serfLan), '-serf-wan-port', String(serfWan),
      '-server-port', String(server), '-dns-port', '-1', '-grpc-port', '-1',
      '-log-level', 'warn', '-config-file', join(dir, 'agent.hcl'),
      ...(opts.args ?? [])
    ]
  }
  const agent = await launchAgent(spec)
  if (opts.t) attachToTest(opts.t, agent)
  return agent
}

export function attachToTest (t: TestLike, agent: ConsulAgent): void {
  t.teardown(async () => {
    if (!t.passing()) t.comment(`consul agent ${agent.url} log:\n${agent.log()}`)
    await agent.stop()
  })
}

/** Starts the process described by `spec` and returns its handle once it is ready (unless lazy). */
export async function launchAgent (spec: AgentSpec): Promise<ConsulAgent> {
  installExitHook()
  const { bin, dir, nodeName, token, hcl, args } = spec
  const port = spec.httpPort
  const url = `http://127.0.0.1:${port}`
  const configFile = join(dir, 'agent.hcl')

  let child: ChildProcess | undefined
  let output = ''
  let exited: Promise<void> = Promise.resolve()

  async function start (): Promise<void> {
    /* c8 ignore next -- start() is only reachable after stop()/kill(), which clear child */
    if (child) return
    await mkdir(dir, { recursive: true })
    await writeFile(configFile, hcl)
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    live.add(proc)
    watchdog(proc.pid!)
    const append = (chunk: Buffer): void => {
      output += chunk.toString()
      // Keep the tail: a long test must not grow memory without bound.
      /* c8 ignore next -- only agents that log more than 256 KB get here */
      if (output.length > 256 * 1024) output = output.slice(-128 * 1024)
    }
    proc.stdout!.on('data', append)
    proc.stderr!.on('data', append)
    exited = new Promise((resolve) => proc.once('exit', () => {
      live.delete(proc)
      if (child === proc) child = undefined
      resolve()
    }))
    // Stops the readiness poll when the agent dies first, so it cannot keep the process alive.
    const gaveUp = new AbortController()
    try {
      await Promise.race([
        spec.lazy ? Promise.resolve() : leaderReady(url, token, nodeName, Date.now() + (spec.readyTimeout ?? 30_000), gaveUp.signal),
        exited.then(() => { throw new Error('consul agent exited during start') })
      ])
    } catch (err) {
      gaveUp.abort()
      proc.kill('SIGKILL')
      await exited
      throw new Error(`${(err as Error).message}\n--- consul log ---\n${output}`)
    }
  }

  async function halt (signal: NodeJS.Signals): Promise<void> {
    const proc = child
    if (!proc) return
    proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  await start()

  const agent: ConsulAgent = {
    address: `127.0.0.1:${port}`,
    url,
    httpPort: port,
    nodeName,
    log: () => output,
    start,
    async stop () {
      child?.kill('SIGCONT')
      await halt('SIGINT')
      await rm(dir, { recursive: true, force: true })
    },
    async kill () {
      child?.kill('SIGCONT')
      await halt('SIGKILL')
    },
    async restart () {
      child?.kill('SIGCONT')
      await halt('SIGKILL')
      await start()
    },
    async pause () {
      // Only meaningful while running, like resume(); a stopped agent is already a black hole.
      const pid = child?.pid
      child?.kill('SIGSTOP')
      if (pid !== undefined) await stopped(pid)
    },
    running: () => child !== undefined,
    resume () { child?.kill('SIGCONT') }
  }

  return agent
}
