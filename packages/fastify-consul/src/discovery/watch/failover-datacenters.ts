import { httpError, type ConsulHttp } from '../../consul/http.js'
import { BadResponseError, UnknownDatacenterError } from '../../errors.js'

/** Which datacenters a watch fails over to, as the options say it. */
export interface FailoverSettings {
  /** Named datacenters, tried in this order after the `nearest` ones. */
  readonly datacenters: readonly string[]
  /** How many of the nearest other datacenters come first (Consul's ranking by round-trip time). */
  readonly nearest: number
  /** Where the user wrote the option, for errors: 'failover' or 'discovery.failover'. */
  readonly field: string
}

/** What the local agent says about datacenters. */
export interface DatacenterFacts {
  /** The agent's own datacenter. */
  readonly local: string
  /**
   * Every datacenter the agent knows, as `/v1/catalog/datacenters` orders them: by the median
   * round-trip estimate from the servers (Consul computes it from `/v1/coordinate/datacenters`), so
   * the local one first and then the nearest. The same ranking Consul's prepared queries use for
   * `NearestN`; we take it rather than recompute Vivaldi distances.
   */
  readonly known: readonly string[]
}

const TIMEOUT = 5000

async function getJson (http: ConsulHttp, path: string, signal: AbortSignal): Promise<unknown> {
  const res = await http.send({ path, timeout: TIMEOUT, signal })
  if (res.status !== 200) throw httpError(`GET ${path}`, res)
  try {
    return JSON.parse(res.text)
  } catch {
    throw new BadResponseError(`GET ${path}`, 'not JSON')
  }
}

/**
 * The agent's own datacenter: `/v1/agent/self` (which needs `agent:read`), else, when the token may not
 * read the agent, the datacenter of the nodes in `/v1/catalog/nodes` (`node:read`, which discovery needs
 * anyway: health answers leave out nodes the token cannot read). So a discovery-only token is enough.
 */
async function localDatacenter (http: ConsulHttp, signal: AbortSignal): Promise<string> {
  let self: unknown
  try {
    self = await getJson(http, '/v1/agent/self', signal)
  } catch (err) {
    if ((err as { code?: string }).code !== 'FST_REG_CONSUL_ACL_DENIED') throw err
    const nodes = await getJson(http, '/v1/catalog/nodes', signal)
    const dc = Array.isArray(nodes) ? (nodes[0] as { Datacenter?: unknown } | undefined)?.Datacenter : undefined
    if (typeof dc !== 'string' || dc === '') throw new BadResponseError('GET /v1/catalog/nodes', '/0/Datacenter: expected a string')
    return dc
  }
  const local = (self as { Config?: { Datacenter?: unknown } } | null)?.Config?.Datacenter
  if (typeof local !== 'string' || local === '') throw new BadResponseError('GET /v1/agent/self', '/Config/Datacenter: expected a string')
  return local
}

/** The agent's datacenter and the datacenters it knows (`/v1/catalog/datacenters`, which needs no ACL). */
export async function datacenterFacts (http: ConsulHttp, signal: AbortSignal): Promise<DatacenterFacts> {
  const [local, known] = await Promise.all([localDatacenter(http, signal), getJson(http, '/v1/catalog/datacenters', signal)])
  // A watch stopped while the answers were on their way acts on nothing: its caller sees the abort.
  signal.throwIfAborted()
  if (!Array.isArray(known) || !known.every((dc) => typeof dc === 'string')) throw new BadResponseError('GET /v1/catalog/datacenters', '/: expected an array of strings')
  return { local, known }
}

/**
 * The failover datacenters in priority order, after the watch's own (`primary`, the agent's when
 * undefined): first the `nearest` other ones by Consul's ranking, then the named ones, each once, as
 * Consul's prepared queries combine `NearestN` and `Datacenters`. A name the agent does not know
 * throws FST_REG_DISCOVERY_UNKNOWN_DATACENTER naming the field as written.
 */
export function failoverOrder (settings: FailoverSettings, facts: DatacenterFacts, primary: string | undefined): string[] {
  for (const [i, dc] of settings.datacenters.entries()) {
    if (!facts.known.includes(dc)) throw new UnknownDatacenterError(`${settings.field}.datacenters[${i}]`, dc, facts.known.map((k) => `"${k}"`).join(', '))
  }
  const own = primary ?? facts.local
  const order: string[] = []
  const add = (dc: string): void => { if (dc !== own && !order.includes(dc)) order.push(dc) }
  for (const dc of facts.known.filter((k) => k !== own).slice(0, settings.nearest)) add(dc)
  for (const dc of settings.datacenters) add(dc)
  return order
}
