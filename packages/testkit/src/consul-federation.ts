import { setTimeout as sleep } from 'node:timers/promises'
import { attachToTest, startConsul, type ConsulAgent, type TestLike } from './consul-agent.js'
import { freePorts } from './free-ports.js'

export interface StartFederationOptions {
  /** Datacenter names, the first being "local" for whoever asks. Default `['dc1', 'dc2']`. */
  datacenters?: string[]
  /** Registers stop() of every agent on teardown, with its log when the test failed. */
  t?: TestLike
  /** Milliseconds to wait until every agent lists every datacenter. Default 30 s. */
  readyTimeout?: number
  /**
   * Serve Consul's DNS interface, each agent on a free port (`dnsPorts`), for callers that resolve
   * services or prepared queries by DNS. Default false: off, as startConsul() has it.
   */
  dns?: boolean
}

export interface ConsulFederation {
  /** One -dev agent per datacenter, by name: each is its datacenter's server and the apps' local agent. */
  readonly agents: Readonly<Record<string, ConsulAgent>>
  /** Each agent's DNS port, by datacenter, with `dns`; empty without. Kept across an agent's kill() and start(). */
  readonly dnsPorts: Readonly<Record<string, number>>
  /** WAN-joins datacenter `name`'s agent to the first one again (after its kill() and start()). */
  join (name: string): Promise<void>
  /** Stops every agent that is still running. Idempotent. */
  stop (): Promise<void>
}

/** One call to an agent's HTTP API: its JSON answer, or an error with the status and Consul's message. */
export async function agentCall<T> (url: string, method: 'GET' | 'PUT' = 'GET'): Promise<T> {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.trim()}`)
  return (text === '' ? undefined : JSON.parse(text)) as T
}

/** Polls `probe` every 50 ms until `done` holds, or throws naming `what` and the last value after `timeoutMs`. */
export async function until<T> (probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (done(value)) return value
    if (Date.now() >= deadline) throw new Error(`${what} after ${timeoutMs} ms: ${JSON.stringify(value)}`)
    await sleep(50)
  }
}

/**
 * Does `act`, then polls as `until` does for at most `againMs`; does `act` again while `timeoutMs` lasts.
 * For a request whose effect can be lost, where asking again is harmless (a WAN join).
 */
export async function actUntil<T> (act: () => Promise<unknown>, probe: () => Promise<T>, done: (value: T) => boolean, opts: { againMs: number, timeoutMs: number, what: string }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  for (let acts = 1; ; acts++) {
    await act()
    const left = deadline - Date.now()
    const shown = await until(probe, done, Math.max(0, Math.min(opts.againMs, left)), opts.what).then((value) => ({ value }), (err: Error) => {
      if (left <= opts.againMs) throw new Error(`${err.message} (${acts} tries in ${opts.timeoutMs} ms)`)
      return undefined
    })
    if (shown !== undefined) return shown.value
  }
}

/**
 * Several datacenters on loopback, WAN-joined (#25): one -dev agent per datacenter on free ports, each
 * joined to the first over the WAN gossip pool, as `consul join -wan` does. Resolves once every agent
 * lists every datacenter in `/v1/catalog/datacenters`, so `?dc=` reads and cross-datacenter blocking
 * queries work from any of them. An agent's kill() is a lost datacenter; its start() brings back an
 * empty one that has to be joined again (`join()`).
 */
export async function startConsulFederation (opts: StartFederationOptions = {}): Promise<ConsulFederation> {
  const names = opts.datacenters ?? ['dc1', 'dc2']
  if (names.length < 2 || new Set(names).size !== names.length) throw new Error(`a federation needs two or more distinct datacenter names, got ${JSON.stringify(names)}`)
  const agents: Record<string, ConsulAgent> = {}
  const dnsPorts: Record<string, number> = {}
  const stop = async (): Promise<void> => { await Promise.all(Object.values(agents).map(async (a) => await a.stop())) }
  try {
    for (const name of names) {
      // startConsul turns DNS off (-dns-port -1) before the extra arguments, and Consul takes the last of a repeated flag.
      if (opts.dns) dnsPorts[name] = (await freePorts(1))[0]!
      const dns = opts.dns ? ['-dns-port', String(dnsPorts[name])] : []
      agents[name] = await startConsul({ args: ['-datacenter', name, ...dns] })
    }
    const first = agents[names[0]!]!
    const timeoutMs = opts.readyTimeout ?? 30_000
    // The first agent's own WAN member says where its WAN gossip listens; no port has to be passed around.
    // The join is asked again every 5 s until it shows: a datacenter restarted under its old name can be
    // answered "joined" and still list only itself while the first one's gossip holds its old, failed
    // member (clean-clone run ci-y waited 30 s on one). A second join settles it; a join is idempotent.
    const join = async (name: string): Promise<void> => {
      const [self] = await agentCall<Array<{ Addr: string, Port: number }>>(`${first.url}/v1/agent/members?wan=1`)
      await actUntil(
        async () => await agentCall(`${agents[name]!.url}/v1/agent/join/${self!.Addr}:${self!.Port}?wan=1`, 'PUT'),
        async () => await agentCall<string[]>(`${agents[name]!.url}/v1/catalog/datacenters`),
        (list) => list.includes(names[0]!),
        { againMs: 5000, timeoutMs, what: `${name} does not see ${names[0]!}` })
    }
    for (const name of names.slice(1)) await join(name)
    // Gossip carries every datacenter to every agent, a moment after the joins.
    for (const name of names) {
      await until(async () => await agentCall<string[]>(`${agents[name]!.url}/v1/catalog/datacenters`), (list) => names.every((n) => list.includes(n)), timeoutMs, `${name} does not list every datacenter`)
    }
    if (opts.t) for (const agent of Object.values(agents)) attachToTest(opts.t, agent)
    return { agents, dnsPorts, stop, join }
  } catch (err) {
    await stop()
    throw err
  }
}
