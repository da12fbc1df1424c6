import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { BadResponseError } from '../errors.js'
import { urlHost } from '../consul/address.js'

export type InstanceStatus = 'passing' | 'warning' | 'critical'

/** One instance of a service as Consul's health endpoint reports it. Frozen: snapshots share them. */
export interface Instance {
  /** `Service.ID`. Unique per agent only: two nodes may each run an instance with the same ID. */
  readonly id: string
  readonly service: string
  /** The Consul node (agent) the instance is registered on. */
  readonly node: string
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
}

// Only the fields we read. Consul adds fields between versions; anything else is ignored, so 1.8 and
// current agents both pass.
const Nullable = <T extends TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]))

const HealthEntry = Type.Object({
  Node: Type.Object({ Node: Type.String(), Address: Type.String() }),
  Service: Type.Object({
    ID: Type.String(),
    Service: Type.String(),
    Address: Type.String(),
    Port: Type.Integer({ minimum: 0, maximum: 65535 }),
    Tags: Nullable(Type.Array(Type.String())),
    Meta: Nullable(Type.Record(Type.String(), Type.String())),
    Weights: Nullable(Type.Object({ Passing: Type.Integer({ minimum: 0 }), Warning: Type.Integer({ minimum: 0 }) }))
  }),
  Checks: Nullable(Type.Array(Type.Object({ Status: Type.String(), CheckID: Type.Optional(Type.String()) })))
})

// Compiled once: a 1,000-instance answer is checked in well under a millisecond.
const healthBody = TypeCompiler.Compile(Type.Array(HealthEntry))

interface RawEntry {
  Node: { Node: string, Address: string }
  Service: {
    ID: string
    Service: string
    Address: string
    Port: number
    Tags?: string[] | null
    Meta?: Record<string, string> | null
    Weights?: { Passing: number, Warning: number } | null
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
    address,
    port: s.Port,
    host: urlHost(address),
    tags: Object.freeze([...(s.Tags ?? [])]),
    meta: Object.freeze({ ...(s.Meta ?? {}) }),
    weight: status === 'passing' ? weights.Passing : status === 'warning' ? weights.Warning : 0,
    status,
    maintenance: inMaintenance(s.ID, checks)
  })
}

/**
 * Parses the body of `GET /v1/health/service/:name`. A body that is not JSON or not the expected shape
 * throws FST_REG_DISCOVERY_BAD_RESPONSE naming the first offending path, so the caller can keep its
 * last good set instead of serving garbage.
 */
export function parseHealth (service: string, text: string): Instance[] {
  const what = `GET /v1/health/service/${service}`
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new BadResponseError(what, 'not JSON')
  }
  if (!healthBody.Check(body)) {
    const first = healthBody.Errors(body).First()
    /* c8 ignore next -- Check() failed, so Errors() always yields at least one entry */
    const detail = first === undefined ? 'unexpected shape' : `${first.path || '/'}: ${first.message}`
    throw new BadResponseError(what, detail)
  }
  return (body as RawEntry[]).map(toInstance)
}
