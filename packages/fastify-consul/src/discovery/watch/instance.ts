import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { BadResponseError } from '../../errors.js'
import { httpOrigin, urlHost } from '../../consul/address.js'

export type InstanceStatus = 'passing' | 'warning' | 'critical'

/** One instance of a service as Consul's health endpoint reports it. Frozen: snapshots share them. */
export interface Instance {
  /** `Service.ID`. Unique per agent only: two nodes may each run an instance with the same ID. */
  readonly id: string
  readonly service: string
  /** The Consul node (agent) the instance is registered on. */
  readonly node: string
  /** The node's datacenter (`Node.Datacenter`); '' from an agent that does not report it. */
  readonly datacenter: string
  /** The node's metadata (`Node.Meta`), where a zone may be kept for the whole node. */
  readonly nodeMeta: Readonly<Record<string, string>>
  /** Raw host: `Service.Address`, or `Node.Address` when the service registered none. */
  readonly address: string
  readonly port: number
  /** `address` made safe for a URL authority: IPv6 in brackets. */
  readonly host: string
  readonly tags: readonly string[]
  readonly meta: Readonly<Record<string, string>>
  /** `Weights.Passing` when passing, `Weights.Warning` when warning, 0 when critical. */
  readonly weight: number
  /** The worst of the instance's checks, node checks (serfHealth) included. */
  readonly status: InstanceStatus
  /** An operator put the service or its node in maintenance (`consul maint`): never routed to, even in panic. */
  readonly maintenance: boolean
  /**
   * `'native'` when the instance registered `Connect: { Native: true }`: it serves mutual TLS with a
   * Connect certificate, and a dispatcher dials it with this app's own (see README, Connect). Absent otherwise.
   */
  readonly connect?: 'native'
}

// Only the fields we read. Consul adds fields between versions; anything else is ignored, so 1.8 and
// current agents both pass.
const Nullable = <T extends TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]))

const HealthEntry = Type.Object({
  Node: Type.Object({ Node: Type.String(), Address: Type.String(), Datacenter: Type.Optional(Type.String()), Meta: Nullable(Type.Record(Type.String(), Type.String())) }),
  Service: Type.Object({
    ID: Type.String(),
    Service: Type.String(),
    Address: Type.String(),
    Port: Type.Integer({ minimum: 0, maximum: 65535 }),
    Tags: Nullable(Type.Array(Type.String())),
    Meta: Nullable(Type.Record(Type.String(), Type.String())),
    Weights: Nullable(Type.Object({ Passing: Type.Integer({ minimum: 0 }), Warning: Type.Integer({ minimum: 0 }) })),
    // Read by shape in toInstance: an odd value here makes the instance plain, not the entry invalid.
    Connect: Type.Optional(Type.Unknown())
  }),
  Checks: Nullable(Type.Array(Type.Object({ Status: Type.String(), CheckID: Type.Optional(Type.String()) })))
})

// Compiled once: a 1,000-instance answer is checked in well under a millisecond.
const healthEntry = TypeCompiler.Compile(HealthEntry)

interface RawEntry {
  Node: { Node: string, Address: string, Datacenter?: string, Meta?: Record<string, string> | null }
  Service: {
    ID: string
    Service: string
    Address: string
    Port: number
    Tags?: string[] | null
    Meta?: Record<string, string> | null
    Weights?: { Passing: number, Warning: number } | null
    Connect?: unknown
  }
  Checks?: Array<{ Status: string, CheckID?: string }> | null
}

/**
 * Consul's aggregated status: critical beats warning beats passing. Maintenance mode shows up as a
 * critical check; any status we do not know is treated as critical rather than trusted.
 */
export function aggregateStatus (checks: ReadonlyArray<{ Status: string }>): InstanceStatus {
  let status: InstanceStatus = 'passing'
  for (const check of checks) {
    if (check.Status === 'passing') continue
    if (check.Status !== 'warning') return 'critical'
    status = 'warning'
  }
  return status
}

/** `consul maint` registers these critical checks; their IDs are Consul's own constants (structs.ServiceMaintPrefix, NodeMaint). */
export function inMaintenance (serviceId: string, checks: ReadonlyArray<{ CheckID?: string }>): boolean {
  return checks.some((c) => c.CheckID === '_node_maintenance' || c.CheckID === `_service_maintenance:${serviceId}`)
}

function toInstance (entry: RawEntry): Instance {
  const s = entry.Service
  const checks = entry.Checks ?? []
  const status = aggregateStatus(checks)
  const weights = s.Weights ?? { Passing: 1, Warning: 1 }
  const address = s.Address !== '' ? s.Address : entry.Node.Address
  return Object.freeze({
    id: s.ID,
    service: s.Service,
    node: entry.Node.Node,
    datacenter: entry.Node.Datacenter ?? '',
    nodeMeta: Object.freeze({ ...(entry.Node.Meta ?? {}) }),
    address,
    port: s.Port,
    host: urlHost(address),
    tags: Object.freeze([...(s.Tags ?? [])]),
    meta: Object.freeze({ ...(s.Meta ?? {}) }),
    weight: status === 'passing' ? weights.Passing : status === 'warning' ? weights.Warning : 0,
    status,
    maintenance: inMaintenance(s.ID, checks),
    ...((s.Connect as { Native?: unknown } | null | undefined)?.Native === true ? { connect: 'native' as const } : {})
  })
}

/** An entry that is well formed but names no address a request can be sent to. */
export interface InvalidInstance {
  readonly id: string
  readonly node: string
  /** As Consul has it, cut to 200 characters: it goes into logs. */
  readonly address: string
  readonly port: number
  readonly reason: string
}

export interface ParsedHealth {
  readonly instances: Instance[]
  /** Entries left out because no origin can be made of their address and port (see httpOrigin). */
  readonly invalid: InvalidInstance[]
}

/** The first schema error of an entry, as `path: message`. */
function schemaError (entry: unknown): string {
  const first = healthEntry.Errors(entry).First()
  /* c8 ignore next -- Check() failed, so Errors() always yields at least one entry */
  return first === undefined ? 'unexpected shape' : `${first.path || '/'}: ${first.message}`
}

/** `Service.ID` of an entry that failed the schema, if it has a usable one, for the log. */
function idOf (entry: unknown): string {
  const id = (entry as { Service?: { ID?: unknown } } | null)?.Service?.ID
  return typeof id === 'string' ? id.slice(0, 200) : '(no id)'
}

/**
 * Parses the body of `GET /v1/health/service/:name`.
 *
 * One entry that is malformed (a port out of range, a negative weight) or that names no address a
 * request can be sent to (`10.0.0.1:8080`, `unix:///x.sock`, markup) is one registration's mistake: it
 * is left out and reported in `invalid`, and the rest of the set is served. A body that is not a JSON
 * array, or in which not a single entry has the expected shape, is not Consul's answer at all (a proxy's
 * error page, another API): it throws FST_REG_DISCOVERY_BAD_RESPONSE naming the first offending path,
 * so the caller keeps its last good set instead of serving nothing.
 */
export function parseHealth (service: string, text: string): ParsedHealth {
  const what = `GET /v1/health/service/${service}`
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new BadResponseError(what, 'not JSON')
  }
  if (!Array.isArray(body)) throw new BadResponseError(what, '/: expected an array')
  const instances: Instance[] = []
  const invalid: InvalidInstance[] = []
  let wellFormed = 0
  for (const [i, entry] of body.entries()) {
    if (!healthEntry.Check(entry)) {
      invalid.push({ id: idOf(entry), node: '', address: '', port: 0, reason: `/${i}${schemaError(entry)}` })
      continue
    }
    wellFormed++
    const instance = toInstance(entry as RawEntry)
    const dialable = httpOrigin(instance.address, instance.port)
    if ('origin' in dialable) instances.push(instance)
    else invalid.push({ id: instance.id, node: instance.node, address: instance.address.slice(0, 200), port: instance.port, reason: dialable.reason })
  }
  if (body.length > 0 && wellFormed === 0) throw new BadResponseError(what, invalid[0]!.reason)
  return { instances, invalid }
}
