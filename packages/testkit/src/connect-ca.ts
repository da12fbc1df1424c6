import { generateKeyPairSync } from 'node:crypto'
import { connect as tlsConnect } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulAgent } from './consul-agent.js'

// What a Connect test asks of an agent's built-in CA (the one `consul agent -dev` runs): its roots, a
// service's leaf certificate, and a CA rotation as an operator does it (`PUT /v1/connect/ca/configuration`
// with a new private key). One home for the helpers fastify-consul's, the gateway's and user-service's
// tests had each written again. Without ACLs, a -dev agent issues a leaf to anyone who asks, for any name.

/** The agent the helpers ask (a `startConsul()` agent, or anything with its HTTP API's URL). */
export type ConnectCaAgent = Pick<ConsulAgent, 'url'>

/** `GET /v1/agent/connect/ca/roots`, as Consul answers it (tests compare and re-encode it as such). */
export interface ConnectRoots {
  /** `<uuid>.consul` */
  TrustDomain: string
  ActiveRootID: string
  /** The active root and, after a rotation, the earlier ones (still trusted, no longer signing). */
  Roots: Array<{ ID: string, RootCert: string, Active: boolean }>
}

/** A service's leaf certificate, as a Connect service holds it. */
export interface ConnectLeaf {
  /** PEM */
  cert: string
  /** PEM */
  key: string
  /** `spiffe://<trust domain>/ns/default/dc/<dc>/svc/<service>`, the certificate's only URI SAN. */
  uri: string
  /** Consul's `SerialNumber`: colon-separated hex, e.g. `3a:0f`. */
  serial: string
}

/** A leaf and what its holder trusts: the TLS options of a Connect caller. */
export interface ConnectIdentity extends ConnectLeaf {
  /** Every root's PEM, the active one and those kept since a rotation. */
  ca: string[]
  trustDomain: string
}

/** The CA after `rotateConnectCa()`: its root and the private key we gave it, to sign certificates it trusts. */
export interface RotatedConnectCa {
  /** The new active root (PEM). */
  cert: string
  /** Its private key (PEM, EC P-256). */
  key: string
  /** The new `ActiveRootID`. */
  id: string
  trustDomain: string
}

export interface RotateConnectCaOptions {
  /** Milliseconds to wait for the new root to become the active one. Default 20 s. */
  timeout?: number
}

export interface UntilLeafOfRootOptions {
  /** The loopback port of the TLS server to probe. */
  port: number
  /** The root (PEM) the server's leaf must verify against, alone. */
  root: string
  /** The client certificate (PEM) to present, for a server that asks for one (Connect-native services do). */
  client: { cert: string, key: string }
  /** Milliseconds before it gives up with an error. */
  timeout: number
}

async function getJson<T> (agent: ConnectCaAgent, path: string): Promise<T> {
  const res = await fetch(`${agent.url}${path}`)
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`)
  return await res.json() as T
}

/** Probes every `interval` ms until `probe` gives a value; throws `what` once `timeout` ms have passed. */
async function poll<T> (probe: () => Promise<T | undefined>, interval: number, timeout: number, what: () => string): Promise<{ value: T, took: number }> {
  const start = performance.now()
  for (;;) {
    const value = await probe()
    const took = Math.round(performance.now() - start)
    if (value !== undefined) return { value, took }
    if (took > timeout) throw new Error(what())
    await sleep(interval)
  }
}

/** The agent's Connect CA roots. */
export async function connectRoots (agent: ConnectCaAgent): Promise<ConnectRoots> {
  return await getJson<ConnectRoots>(agent, '/v1/agent/connect/ca/roots')
}

/** The agent's leaf certificate for `service` (its cached one, if it has issued one already). */
export async function connectLeaf (agent: ConnectCaAgent, service: string): Promise<ConnectLeaf> {
  const body = await getJson<{ CertPEM: string, PrivateKeyPEM: string, ServiceURI: string, SerialNumber: string }>(
    agent, `/v1/agent/connect/ca/leaf/${encodeURIComponent(service)}`)
  return { cert: body.CertPEM, key: body.PrivateKeyPEM, uri: body.ServiceURI, serial: body.SerialNumber }
}

/** `service`'s leaf with the agent's roots and trust domain: what a Connect caller or server holds. */
export async function connectIdentity (agent: ConnectCaAgent, service: string): Promise<ConnectIdentity> {
  const [leaf, roots] = await Promise.all([connectLeaf(agent, service), connectRoots(agent)])
  return { ...leaf, ca: roots.Roots.map((r) => r.RootCert), trustDomain: roots.TrustDomain }
}

/**
 * Rotates the agent's Connect CA to a new EC P-256 key we hold, as an operator does, and resolves once the
 * new root is the active one. Consul 1.8 keeps the old root in the list (cross-signed, still trusted) and
 * re-issues every cached leaf within about 30 s; a leaf first asked for after the rotation is the new root's.
 */
export async function rotateConnectCa (agent: ConnectCaAgent, opts: RotateConnectCaOptions = {}): Promise<RotatedConnectCa> {
  const before = await connectRoots(agent)
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string
  const res = await fetch(`${agent.url}/v1/connect/ca/configuration`, {
    method: 'PUT',
    body: JSON.stringify({ Provider: 'consul', Config: { LeafCertTTL: '72h', RotationPeriod: '2160h', IntermediateCertTTL: '8760h', PrivateKey: key } })
  })
  if (!res.ok) throw new Error(`PUT /v1/connect/ca/configuration answered ${res.status}: ${await res.text()}`)
  const timeout = opts.timeout ?? 20_000
  const { value } = await poll(async () => {
    const now = await connectRoots(agent)
    const active = now.Roots.find((r) => r.Active)
    // 1.8.7 answers the PUT once the new root is committed, and its agent has listed it at the first read
    // each time we looked; the wait is for an agent whose cached roots lag behind its servers.
    /* c8 ignore next -- see above: not reached on 1.8.7 */
    if (active === undefined || now.ActiveRootID === before.ActiveRootID) return undefined
    return { cert: active.RootCert, key, id: active.ID, trustDomain: now.TrustDomain }
  }, 50, timeout, () => `the rotated Connect root is not active after ${timeout} ms`)
  return value
}

/** Whether a TLS handshake with 127.0.0.1:`port` verifies the server's chain against `root` alone. */
function handshakeVerifies (port: number, root: string, client: { cert: string, key: string }): Promise<boolean> {
  return new Promise((resolve) => {
    // A Connect leaf has no DNS name: the chain is what is checked here, not the identity.
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: [root], ...client, checkServerIdentity: () => undefined }, () => { socket.destroy(); resolve(true) })
    socket.on('error', () => { socket.destroy(); resolve(false) })
  })
}

/**
 * Waits until the TLS server on `port` presents a leaf that verifies against `root` alone (after a
 * rotation: the server serves a re-issued leaf), probing every 250 ms. Resolves with the milliseconds it
 * took: a trace for the test's log, not a figure to assert on.
 */
export async function untilLeafOfRoot (opts: UntilLeafOfRootOptions): Promise<number> {
  const { took } = await poll(async () => await handshakeVerifies(opts.port, opts.root, opts.client) || undefined, 250, opts.timeout,
    () => `port ${opts.port} still serves a leaf of another root after ${opts.timeout} ms`)
  return took
}
