import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { ensureConsul } from './ensure-consul.js'
import { watchdog, type TestLike } from './consul-agent.js'

// Consul's built-in proxy as the real sidecar of a registered service: `consul connect proxy
// -sidecar-for <id>` reads the sidecar registration from the agent (its public port, its upstreams),
// fetches the leaf certificate, serves mutual TLS on the public port, authorizes each new inbound
// connection against intentions, and listens on each upstream's local port.

export interface StartConnectProxyOptions {
  /** The agent the service and its sidecar are registered with (`address` is host:port of its HTTP API). */
  agent: { readonly address: string }
  /** The ID of the service (not of the sidecar) whose sidecar to run. */
  sidecarFor: string
  /** The ACL token the proxy uses (needs `service:write` on the service), as CONSUL_HTTP_TOKEN. */
  token?: string
  /** Registers stop() on teardown and prints the proxy's log there when the test failed. */
  t?: TestLike
  /** Milliseconds to wait for the sidecar registration and every listener. Default 30 s. */
  readyTimeout?: number
}

export interface ConnectProxy {
  /** The sidecar service's ID, e.g. `<id>-sidecar-proxy`. */
  readonly id: string
  /** The public (mutual TLS) port other sidecars dial. */
  readonly publicPort: number
  /** Each upstream's local port, by destination name. */
  readonly upstreams: Readonly<Record<string, number>>
  /** The proxy's captured stdout and stderr. */
  log (): string
  /** SIGINT, then SIGKILL after 5 s; resolves once the process is gone. Idempotent. */
  stop (): Promise<void>
}

interface SidecarEntry {
  ID: string
  Kind?: string
  Port: number
  Proxy?: { DestinationServiceID?: string, Upstreams?: Array<{ DestinationName: string, LocalBindAddress?: string, LocalBindPort: number }> }
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false

/** The sidecar registered for `serviceId`, or undefined while the agent does not list one. */
async function sidecarOf (agentAddress: string, serviceId: string, token: string | undefined): Promise<SidecarEntry | undefined> {
  const res = await fetch(`http://${agentAddress}/v1/agent/services`, { headers: token ? { 'x-consul-token': token } : {}, signal: AbortSignal.timeout(2000) })
  if (!res.ok) throw new Error(`GET /v1/agent/services answered ${res.status}: ${await res.text()}`)
  const services = await res.json() as Record<string, SidecarEntry>
  return Object.values(services).find((s) => s.Kind === 'connect-proxy' && s.Proxy?.DestinationServiceID === serviceId)
}

function accepts (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

export async function startConnectProxy (opts: StartConnectProxyOptions): Promise<ConnectProxy> {
  const bin = await ensureConsul()
  const deadline = Date.now() + (opts.readyTimeout ?? 30_000)
  let sidecar: SidecarEntry | undefined
  while ((sidecar = await sidecarOf(opts.agent.address, opts.sidecarFor, opts.token)) === undefined) {
    if (Date.now() > deadline) throw new Error(`no sidecar is registered for service ID "${opts.sidecarFor}" on ${opts.agent.address}`)
    await sleep(50)
  }
  const upstreams = Object.fromEntries((sidecar.Proxy?.Upstreams ?? []).map((u) => [u.DestinationName, u.LocalBindPort]))
  const listeners: Array<[string, number]> = [
    ['127.0.0.1', sidecar.Port],
    ...(sidecar.Proxy?.Upstreams ?? []).map((u): [string, number] => [u.LocalBindAddress ?? '127.0.0.1', u.LocalBindPort])
  ]

  if (!exitHookInstalled) {
    exitHookInstalled = true
    /* c8 ignore next -- runs while the process exits, after coverage has been collected */
    process.on('exit', () => { for (const child of live) child.kill('SIGKILL') })
  }
  // The token travels in the environment, never on the command line (where `ps` shows it).
  const env = { ...process.env, CONSUL_HTTP_ADDR: opts.agent.address, ...(opts.token !== undefined && { CONSUL_HTTP_TOKEN: opts.token }) }
  const proc = spawn(bin, ['connect', 'proxy', '-sidecar-for', opts.sidecarFor, '-log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'], env })
  live.add(proc)
  // Like an agent, a proxy must not outlive a test process killed by SIGKILL.
  watchdog(proc.pid!)
  let output = ''
  const append = (chunk: Buffer): void => {
    output += chunk.toString()
    /* c8 ignore next -- only proxies that log more than 256 KB get here */
    if (output.length > 256 * 1024) output = output.slice(-128 * 1024)
  }
  proc.stdout!.on('data', append)
  proc.stderr!.on('data', append)
  let running = true
  const exited = new Promise<void>((resolve) => proc.once('exit', () => {
    running = false
    live.delete(proc)
    resolve()
  }))

  const stop = async (): Promise<void> => {
    if (running) proc.kill('SIGINT')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  try {
    for (const [host, port] of listeners) {
      while (!await accepts(host, port)) {
        if (!running) throw new Error('consul connect proxy exited during start')
        if (Date.now() > deadline) throw new Error(`consul connect proxy did not listen on ${host}:${port} in time`)
        await sleep(50)
      }
    }
  } catch (err) {
    await stop()
    throw new Error(`${(err as Error).message}\n--- proxy log ---\n${output}`)
  }

  const proxy: ConnectProxy = { id: sidecar.ID, publicPort: sidecar.Port, upstreams, log: () => output, stop }
  if (opts.t) {
    const t = opts.t
    t.teardown(async () => {
      if (!t.passing()) t.comment(`consul connect proxy for ${opts.sidecarFor} log:\n${output}`)
      await stop()
    })
  }
  return proxy
}
