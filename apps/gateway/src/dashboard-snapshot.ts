import type { Instance, ServiceDispatcher, ServiceWatch, WatchState } from '@reg/fastify-consul'

// What the live view shows, computed from the watch and the dispatcher (both already hold it in
// memory) plus a 10-second window of which instance answered each request.

/** How a row is drawn: Consul's status, unless this gateway ejected the instance. */
export type RowState = 'passing' | 'warning' | 'critical' | 'ejected'

export interface InstanceRow {
  /** The Consul service id. */
  id: string
  node: string
  /** The node's datacenter, as Consul reports it ('' from an agent that does not). */
  datacenter: string
  /** Its zone: service meta `zone`, else node meta `zone` (where locality looks), or null. */
  zone: string | null
  address: string
  port: number
  status: Instance['status']
  maintenance: boolean
  weight: number
  ejected: boolean
  /** Attempts in flight on it now. */
  outstanding: number
  /** Its share (0–1) of the requests answered in the last WINDOW_SECONDS. */
  share: number
  state: RowState
}

/** One priority level of the watch (a datacenter, or a zone of the local one) and its share of traffic now. */
export interface PriorityRow {
  /** The datacenter's name; null for the local agent's own while no instance there says its name. */
  datacenter: string | null
  /** With locality: the gateway's zone for its level; null for every other level. */
  zone: string | null
  /** The state of that datacenter's watch: 'stale' means its last known instances are kept. */
  state: WatchState
  routable: number
  candidates: number
  /** Its share of the traffic now, 0–1. */
  load: number
}

export interface DashboardSnapshot {
  service: string
  /** Epoch ms of this snapshot. */
  at: number
  watch: {
    state: WatchState
    /** Epoch ms of Consul's last answer, or null before the first. */
    lastContact: number | null
    /** Seconds since Consul last answered while stale or expired; 0 while live. */
    staleSeconds: number
    panic: boolean
  }
  /** The traffic split over datacenters (failover) and zones (locality), first priority first; one level otherwise. */
  priorities: PriorityRow[]
  instances: InstanceRow[]
  /** Since the gateway started. */
  totals: { requests: number, retries: number, ejections: number, hedges: number, hedgesWon: number, deadlinesExceeded: number }
  /** Requests answered in the window. */
  windowRequests: number
}

export const WINDOW_SECONDS = 10

/**
 * Requests per instance over the last WINDOW_SECONDS, in one-second buckets: adding is a map
 * increment, and a bucket is reused once it is older than the window.
 */
export class RequestWindow {
  readonly #buckets = Array.from({ length: WINDOW_SECONDS }, () => ({ second: -1, counts: new Map<string, number>() }))

  /** A request whose last attempt went to `instance` (undefined: none could be picked, nothing to count). */
  add (instance: Pick<Instance, 'id'> | undefined, now: number): void {
    if (instance === undefined) return
    const id = instance.id
    const second = Math.floor(now / 1000)
    const bucket = this.#buckets[second % WINDOW_SECONDS]!
    if (bucket.second !== second) {
      bucket.second = second
      bucket.counts.clear()
    }
    bucket.counts.set(id, (bucket.counts.get(id) ?? 0) + 1)
  }

  /** Requests per instance id within the window ending at `now`. */
  counts (now: number): Map<string, number> {
    const second = Math.floor(now / 1000)
    const total = new Map<string, number>()
    for (const bucket of this.#buckets) {
      if (second - bucket.second >= WINDOW_SECONDS) continue
      for (const [id, n] of bucket.counts) total.set(id, (total.get(id) ?? 0) + n)
    }
    return total
  }
}

export function snapshot (watch: ServiceWatch, dispatcher: ServiceDispatcher, window: RequestWindow, now: number): DashboardSnapshot {
  const ejected = new Set(dispatcher.ejected.map((i) => i.id))
  const counts = window.counts(now)
  let windowRequests = 0
  for (const n of counts.values()) windowRequests += n
  const stale = watch.state === 'stale' || watch.state === 'expired'
  const stats = dispatcher.stats
  return {
    service: watch.service,
    at: now,
    watch: {
      state: watch.state,
      lastContact: watch.lastContact ?? null,
      staleSeconds: stale && watch.lastContact !== undefined ? Math.round((now - watch.lastContact) / 1000) : 0,
      panic: watch.panic
    },
    priorities: priorityRows(watch),
    instances: watch.all.map((i) => ({
      id: i.id,
      node: i.node,
      datacenter: i.datacenter,
      zone: i.meta.zone ?? i.nodeMeta.zone ?? null,
      address: i.address,
      port: i.port,
      status: i.status,
      maintenance: i.maintenance,
      weight: i.weight,
      ejected: ejected.has(i.id),
      outstanding: dispatcher.outstanding(i),
      share: windowRequests === 0 ? 0 : (counts.get(i.id) ?? 0) / windowRequests,
      state: ejected.has(i.id) ? 'ejected' : i.status
    })),
    totals: { requests: stats.requests, retries: stats.retries, ejections: stats.ejections, hedges: stats.hedges, hedgesWon: stats.hedgesWon, deadlinesExceeded: stats.deadlinesExceeded },
    windowRequests
  }
}

/**
 * The watch's priority levels as plain JSON. A level of the local agent's own datacenter has no name in
 * the watch (the gateway asks its agent, which answers for its datacenter): the name is taken from an
 * instance that came from none of the named levels, so an operator reads "dc1", not "local", whenever
 * Consul lists at least one instance there (critical ones count: Consul lists them too).
 */
function priorityRows (watch: Pick<ServiceWatch, 'priorities' | 'all'>): PriorityRow[] {
  const named = new Set(watch.priorities.map((p) => p.datacenter))
  const local = watch.all.find((i) => i.datacenter !== '' && !named.has(i.datacenter))?.datacenter ?? null
  return watch.priorities.map((p) => ({
    datacenter: p.datacenter ?? local,
    zone: p.zone ?? null,
    state: p.state,
    routable: p.routable,
    candidates: p.candidates,
    load: p.load
  }))
}
