import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ConnectUnknownUpstreamError, InvalidOptionError } from '../errors.js'
import { firstProblem } from '../util/validate.js'

// The mainstream Connect path: the app speaks plain HTTP on loopback and a sidecar proxy (a platform's
// Envoy, or Consul's built-in `consul connect proxy -sidecar-for <id>`) carries the mutual TLS and
// enforces intentions. The plugin only registers the sidecar's definition with the service, in the same
// request (`Connect.SidecarService`), so the sidecar comes and goes with the service: Consul deregisters
// it with its parent, and its alias check follows the parent's health and maintenance.

const Port = (description: string): ReturnType<typeof Type.Integer> => Type.Integer({ minimum: 1, maximum: 65535, description })
// The service names Connect identities allow (a SPIFFE `svc` segment), as connectNative() checks them.
const ServiceName = Type.String({ pattern: '^[A-Za-z0-9._-]+$', description: 'a service name of [A-Za-z0-9._-]' })

const Upstream = Type.Object({
  destinationName: ServiceName,
  localBindPort: Port('a port from 1 to 65535 (Consul 1.8 accepts 0, and the proxy then fails to bind)'),
  localBindAddress: Type.Optional(Type.String({ pattern: '^[0-9.]+$|^[0-9a-fA-F:]+$', description: 'an IP address, e.g. "127.0.0.1"' })),
  datacenter: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]+$', description: 'a datacenter name' }))
}, { additionalProperties: false, description: 'an object { destinationName, localBindPort, localBindAddress?, datacenter? }' })

const Sidecar = Type.Object({
  port: Type.Optional(Port('a port from 1 to 65535 (leave it out to let Consul pick one from its sidecar range)')),
  upstreams: Type.Optional(Type.Array(Upstream, { description: 'an array of upstreams' }))
}, { additionalProperties: false, description: 'an object { port?, upstreams? }' })

const SidecarForm = Type.Object({ sidecar: Sidecar }, { additionalProperties: false, description: 'an object { sidecar: { port?, upstreams? } }' })
const compiled = TypeCompiler.Compile(SidecarForm)

/** A service this app calls through its sidecar: the proxy listens on `localBindAddress:localBindPort`. */
export interface SidecarUpstreamOptions {
  /** The service to reach; the sidecar dials its healthy Connect instances (their sidecars or native ones). */
  destinationName: string
  /** The local port the sidecar listens on for this upstream. Required: Consul assigns none. */
  localBindPort: number
  /** The address the sidecar binds for this upstream. Default "127.0.0.1" (the proxy's default). */
  localBindAddress?: string | undefined
  /** Reach the destination in this datacenter instead of the local one. */
  datacenter?: string | undefined
}

/** `connect: { sidecar: … }`: what the sidecar registered with this service looks like. */
export interface ConnectSidecarOptions {
  /** The sidecar's public (mTLS) port. Default: Consul picks one from its sidecar range (21000–21255). */
  port?: number | undefined
  /** Services this app calls through the sidecar. Default none. */
  upstreams?: readonly SidecarUpstreamOptions[] | undefined
}

/** An upstream with its defaults applied. */
export interface SidecarUpstream {
  readonly destinationName: string
  readonly localBindAddress: string
  readonly localBindPort: number
  readonly datacenter: string | undefined
}

export interface SidecarSettings {
  readonly port: number | undefined
  readonly upstreams: readonly SidecarUpstream[]
}

/** The address the built-in proxy (and Envoy) bind an upstream to when none is given. */
export const DEFAULT_UPSTREAM_ADDRESS = '127.0.0.1'

/** Whether `connect` is the sidecar form rather than a connectNative() handle (which has no `sidecar` key). */
export function isSidecarForm (connect: unknown): boolean {
  return typeof connect === 'object' && connect !== null && Object.hasOwn(connect, 'sidecar')
}

/** Validates `connect: { sidecar }`; problems name the field as written (`connect.sidecar.upstreams[1].localBindPort`). */
export function normalizeSidecar (connect: unknown): SidecarSettings {
  const problem = firstProblem(compiled, connect, 'connect')
  if (problem) throw new InvalidOptionError(problem.field, problem.expected)
  const sidecar = (connect as { sidecar: ConnectSidecarOptions }).sidecar
  const upstreams: SidecarUpstream[] = []
  const seenNames = new Map<string, number>()
  const seenBinds = new Map<string, number>()
  for (const [i, u] of (sidecar.upstreams ?? []).entries()) {
    const field = `connect.sidecar.upstreams[${i}]`
    const upstream = {
      destinationName: u.destinationName,
      localBindAddress: u.localBindAddress ?? DEFAULT_UPSTREAM_ADDRESS,
      localBindPort: u.localBindPort,
      datacenter: u.datacenter
    }
    // One name per datacenter is enough to pick a local port by name; Consul accepts duplicates, the proxy does not bind them twice.
    const key = `${upstream.destinationName}@${upstream.datacenter ?? ''}`
    const bind = `${upstream.localBindAddress}:${upstream.localBindPort}`
    if (seenNames.has(key)) throw new InvalidOptionError(`${field}.destinationName`, `a destination not already listed (upstreams[${seenNames.get(key)!}] names "${upstream.destinationName}" too)`)
    if (seenBinds.has(bind)) throw new InvalidOptionError(`${field}.localBindPort`, `a port no other upstream binds (upstreams[${seenBinds.get(bind)!}] binds ${bind})`)
    if (sidecar.port !== undefined && upstream.localBindPort === sidecar.port) throw new InvalidOptionError(`${field}.localBindPort`, `a port other than connect.sidecar.port (${sidecar.port})`)
    seenNames.set(key, i)
    seenBinds.set(bind, i)
    upstreams.push(upstream)
  }
  return { port: sidecar.port, upstreams }
}

/** The registration's `Connect` block (only fields Consul 1.8 knows). */
export function sidecarConnectBlock (settings: SidecarSettings): Record<string, unknown> {
  return {
    SidecarService: {
      ...(settings.port !== undefined && { Port: settings.port }),
      Proxy: {
        Upstreams: settings.upstreams.map((u) => ({
          DestinationName: u.destinationName,
          LocalBindAddress: u.localBindAddress,
          LocalBindPort: u.localBindPort,
          ...(u.datacenter !== undefined && { Datacenter: u.datacenter })
        }))
      }
    }
  }
}

/**
 * The upstream named `service` (in `datacenter`, when several share the name), from the sidecar this
 * service registered. Throws FST_REG_CONNECT_UNKNOWN_UPSTREAM: the sidecar has no local port for it.
 */
export function findUpstream (settings: SidecarSettings | undefined, service: string, datacenter?: string): SidecarUpstream {
  const upstreams = settings?.upstreams ?? []
  const found = upstreams.filter((u) => u.destinationName === service && (datacenter === undefined || u.datacenter === datacenter))
  // Several datacenters for one name and none asked for: the local one (no datacenter) if listed.
  const match = found.length > 1 ? found.find((u) => u.datacenter === undefined) : found[0]
  if (match !== undefined) return match
  const name = datacenter === undefined ? `"${service}"` : `"${service}" in datacenter "${datacenter}"`
  const listed = upstreams.length === 0
    ? (settings === undefined ? 'nothing (the plugin was registered without connect: { sidecar })' : 'nothing')
    : upstreams.map((u) => u.datacenter === undefined ? u.destinationName : `${u.destinationName} (${u.datacenter})`).join(', ')
  throw new ConnectUnknownUpstreamError(name, listed)
}
