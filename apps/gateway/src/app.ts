import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import consulPlugin, { type ConnectNativeOutbound, type DispatcherOptions, type ServiceDispatcher, type ServiceWatch } from '@reg/fastify-consul'
import healthPlugin, { type CheckReport, type HealthPluginOptions } from '@reg/fastify-health'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { adminHealthRoute, appMetrics, logClientAbort, METRICS_PORT_META, metricsRoute, type AdminListener } from '@reg/app-kit'
import { dashboardRoutes } from './dashboard.js'
import { isHostName } from './dashboard-host.js'
import { InvalidOptionError } from './errors.js'
import { proxyRoutes } from './proxy.js'
import { singleHost } from './request-target.js'
import { defaultPseudonym, isPseudonym, refuseLoops } from './via.js'

// The whole gateway as one plugin (the fastify/demo shape): tests register it on a bare Fastify() and
// inject; server.ts adds the logger, timeouts, listen and shutdown. It is wrapped in fastify-plugin so that
// `fastify.health`, `fastify.consul` and `fastify.gateway` reach the root, where server.ts and tests use
// them. The proxy routes live in their own, encapsulated plugin (src/proxy.ts).

export interface GatewayOptions {
  /** Consul service name of the instances `/users` is proxied to. Default `user-service`. */
  upstream?: string
  /** The gateway's own Consul service id. Default: @reg/fastify-consul's `gateway-${hostname}-${port}`, fixed at listen. */
  serviceId?: string
  /**
   * The gateway's name in the `Via` header it appends to proxied requests, and by which it refuses a
   * request that already went through it (508). An RFC 9110 token. Default: the service id (see
   * `serviceId`), so that gateways chained in front of each other never share one.
   */
  pseudonym?: string
  /** How to reach the agent; unset fields fall back to CONSUL_HTTP_* (read by @reg/fastify-consul). */
  consul?: { address?: string, token?: string }
  /**
   * Datacenters the upstream fails over to, in priority order after the local agent's own (Envoy's
   * priority levels, through the local agent). A name Consul does not know makes `ready()` reject with
   * FST_REG_DISCOVERY_UNKNOWN_DATACENTER. Default none: the local datacenter only.
   */
  failover?: string[]
  /**
   * The gateway's zone: registered as its meta `zone`, and the upstream's instances in it are preferred
   * (`locality: true`) while healthy enough. Default none; @reg/fastify-consul then still registers
   * REG_ZONE as meta `zone`, but the gateway prefers no zone (server.ts passes REG_ZONE here).
   */
  zone?: string
  /** Register the gateway itself in Consul on listen. Default true. Under inject() nothing is registered either way. */
  register?: boolean
  /**
   * How the upstream is discovered and called: balancer, retries, retry budget, ejection, pool, Consul
   * query (tag, dc, passingOnly, …). Validated by @reg/fastify-consul (FST_REG_DISCOVERY_INVALID_OPTION).
   */
  discovery?: DispatcherOptions
  /** Milliseconds an upstream has to start answering, and then between two body chunks. Default 10000. */
  timeout?: number
  /** Passed to @reg/fastify-health (paths, details, thresholds); the `upstream` check is added here. */
  health?: Omit<HealthPluginOptions, 'checks'>
  /** The `upstream` health check. Defaults: interval 1000 ms (it only reads memory), timeout 2000 ms. */
  upstreamCheck?: { interval?: number, timeout?: number }
  /** Serve `GET /metrics` (Prometheus text): the plugins' metrics and Node's runtime and process metrics. Default true. */
  metrics?: boolean
  /**
   * Serve the live view of the upstream at `GET /_gateway/` (and its event stream at `/_gateway/events`):
   * `true` or its settings. Default false: it shows internal addresses.
   */
  dashboard?: boolean | LiveViewOptions
  /**
   * The admin listener (@reg/app-kit's, which server.ts always passes): `/metrics`, the live view and a
   * detailed `/health` go on `admin.server`, and `admin.port` is registered as meta `metrics_port` for
   * Prometheus. The public port then keeps a summary `/health` (the verdict only, for Consul's HTTP check
   * and load balancers; `health.details` still wins). Default none: everything on this instance, as an
   * embedding app or a test that injects wants.
   */
  admin?: AdminListener
  /**
   * The gateway's Connect identity (`REG_CONNECT=true`): the handle of @reg/fastify-consul's
   * `connectNative({ service: 'gateway', inbound: false })`. The upstream's Connect-native instances are
   * then dialed with mutual TLS and the gateway's leaf certificate, and their SPIFFE ID is checked; the
   * public port stays plain HTTP (an edge serves browsers, which hold no Connect certificate). Its
   * `service` must be `gateway`. Default none: Connect-native instances are not routed to.
   */
  connect?: ConnectNativeOutbound
}

/** The live view's settings; see DEFAULTS.dashboard. */
export interface LiveViewOptions {
  /**
   * Host names (or IP literals, IPv6 in brackets) the view answers to besides loopback ones (`localhost`,
   * `*.localhost`, 127.0.0.0/8, `[::1]`); any other Host gets 421 FST_REG_GATEWAY_MISDIRECTED (DNS rebinding).
   */
  allowedHosts?: string[]
  /** Event streams open at once; the next gets 503 FST_REG_GATEWAY_TOO_MANY_STREAMS. */
  maxStreams?: number
  /** Bytes a viewer may leave unread on its event stream before it is dropped. */
  maxBufferedBytes?: number
}

/** `fastify.gateway`: what the proxy runs on, for server.ts, tests and operators. */
export interface Gateway {
  /** Consul service name of the upstream. */
  readonly upstream: string
  /** The dispatcher every proxied request goes through: `stats`, `ejected`, `events` ('eject', 'readmit'). */
  readonly dispatcher: ServiceDispatcher
  /** The live view of the upstream's healthy instances (shared with the dispatcher's); the health check reads it. */
  readonly watch: ServiceWatch
  /** This gateway's name in `Via` (the option, or the default fixed at listen). */
  readonly pseudonym: string
}

declare module 'fastify' {
  interface FastifyInstance {
    gateway: Gateway
  }
}

export const DEFAULTS = Object.freeze({
  /**
   * A gateway's discovery: the least-loaded of two instances (a frozen replica stops getting requests after
   * a handful), a per-try timeout so an idempotent request stuck on one is retried elsewhere, and a 502/503/
   * 504 from one replica (say, one that is closing) retried on another within the retry budget. Slow start
   * for 30 s after a replica joins: its share ramps up and its cold first answers are not held against it.
   * Hedging: an idempotent request slower than the service's recent p95 is sent to a second replica
   * too, so a frozen or GC-pausing replica costs its callers about the p95, not the 2 s timeout.
   */
  discovery: Object.freeze({ balancer: 'least-request', perTryTimeout: '2s', retryOn: Object.freeze([502, 503, 504]), slowStartMs: '30s', hedge: true }) as Readonly<DispatcherOptions>,
  upstream: 'user-service',
  timeout: 10_000,
  upstreamCheck: Object.freeze({ interval: 1000, timeout: 2000 }),
  /**
   * The live view: a few operators' tabs, not an audience, so 32 streams; 256 KiB unsent is minutes of
   * snapshots of a normal fleet, so only a reader that stopped reaches it (32 of them hold 8 MiB at most).
   */
  dashboard: Object.freeze({ allowedHosts: Object.freeze([]) as readonly string[], maxStreams: 32, maxBufferedBytes: 256 * 1024 })
})

/** The Consul service name the gateway registers as. */
export const SERVICE_NAME = 'gateway'

const gateway: FastifyPluginAsync<GatewayOptions> = async function gateway (fastify, opts) {
  const upstream = opts.upstream ?? DEFAULTS.upstream
  const timeout = opts.timeout ?? DEFAULTS.timeout
  if (!Number.isInteger(timeout) || timeout < 1) throw new InvalidOptionError('timeout', 'an integer number of milliseconds >= 1')
  const discovery = opts.discovery ?? {}
  if (opts.pseudonym !== undefined && !isPseudonym(opts.pseudonym)) throw new InvalidOptionError('pseudonym', 'an RFC 9110 token (letters, digits and !#$%&\'*+-.^_`|~)')
  let pseudonym = opts.pseudonym ?? defaultPseudonym(SERVICE_NAME, opts.serviceId, undefined)
  if (opts.pseudonym === undefined && opts.serviceId === undefined) {
    // The default service id has the bound port in it, as the one @reg/fastify-consul registers.
    fastify.addHook('onListen', async () => {
      pseudonym = defaultPseudonym(SERVICE_NAME, undefined, (fastify.server.address() as AddressInfo).port)
    })
  }

  // Before anything else, on every route and on 404s: a request with two Host lines is refused (400),
  // and so is one that already went through this gateway (508): it is going round a loop.
  fastify.addHook('onRequest', singleHost)
  fastify.addHook('onRequest', refuseLoops(() => pseudonym))
  fastify.addHook('onRequest', logClientAbort)
  // Where what operators read goes: the admin listener when there is one, else this instance.
  const admin = opts.admin
  const operators = admin?.server ?? fastify
  // Without it the plugins record into the global provider, a no-op unless the embedding process set one.
  const metrics = opts.metrics === false ? undefined : appMetrics()
  if (metrics !== undefined) {
    fastify.addHook('onClose', () => metrics.shutdown())
    await operators.register(metricsRoute, { metrics })
  }
  const meterProvider = metrics?.provider

  // Health first: the Consul plugin reads fastify.health for the check's path and initial status.
  await fastify.register(healthPlugin, { details: admin === undefined, ...opts.health, meterProvider })
  if (admin !== undefined) await admin.server.register(adminHealthRoute, { health: fastify.health })
  const failover = opts.failover ?? []
  await fastify.register(consulPlugin, {
    service: { name: SERVICE_NAME, id: opts.serviceId, zone: opts.zone, ...(admin !== undefined && metrics !== undefined && { meta: { [METRICS_PORT_META]: String(admin.port) } }) },
    consul: opts.consul,
    register: opts.register,
    meterProvider,
    connect: opts.connect,
    // The plugin's own option rather than the dispatcher's: the plugin checks the names against the
    // datacenters Consul knows at ready(), so a typo stops the gateway at startup instead of leaving it
    // without failover and a warning nobody reads. The dispatcher inherits it.
    ...(failover.length > 0 && { discovery: { failover: { datacenters: failover } } })
  })

  // It starts watching now, so the first Consul answer is usually in before the first request. The
  // gateway's one `discovery` option goes to the dispatcher whole (@reg/fastify-consul splits the query
  // from the dispatching); its watch is the one view of the instances that the health check and the
  // live view read. With a zone, instances in it take the traffic while healthy enough (the plugin reads
  // the zone from `service.zone` above); an explicit `discovery.locality` still wins.
  const dispatcher = fastify.consul.dispatcher(upstream, { ...DEFAULTS.discovery, ...(opts.zone !== undefined && { locality: true }), ...discovery })
  const watch = dispatcher.watch
  fastify.addHook('onClose', async () => {
    // @reg/fastify-consul would close it too; closing what we opened keeps that an implementation detail.
    await dispatcher.close()
  })

  // Non-critical: with no upstream the gateway reports a warning (429), not critical (503): it is fine
  // itself and answers 503 with a clear code until an upstream appears. The output names the real cause
  // when discovery fails static (Consul unreachable, or a panic), so an operator reads why, not a symptom.
  fastify.health.addCheck('upstream', async (signal): Promise<CheckReport> => {
    // The first run (in onReady) waits for Consul's first answer, so /health is real from the start;
    // when Consul does not answer, the check's timeout reports it.
    await Promise.race([watch.ready, once(signal, 'abort')])
    return upstreamReport(upstream, watch)
  }, {
    critical: false,
    interval: opts.upstreamCheck?.interval ?? DEFAULTS.upstreamCheck.interval,
    timeout: opts.upstreamCheck?.timeout ?? DEFAULTS.upstreamCheck.timeout
  })

  fastify.decorate('gateway', Object.freeze({ upstream, dispatcher, watch, get pseudonym () { return pseudonym } }))

  await fastify.register(proxyRoutes, { upstream, dispatcher, timeout, pseudonym: () => pseudonym })
  const liveView = liveViewOptions(opts.dashboard)
  if (liveView !== undefined) await operators.register(dashboardRoutes, { prefix: '/_gateway', dispatcher, watch, ...liveView })
}

/** The live view's settings over the defaults, validated; undefined when it is off. */
function liveViewOptions (dashboard: GatewayOptions['dashboard']): Required<LiveViewOptions> | undefined {
  if (dashboard === undefined || dashboard === false) return undefined
  const settings = { ...DEFAULTS.dashboard, ...(dashboard === true ? {} : dashboard) }
  if (!Array.isArray(settings.allowedHosts) || !settings.allowedHosts.every((host) => typeof host === 'string' && isHostName(host))) {
    throw new InvalidOptionError('dashboard.allowedHosts', 'an array of host names or IP literals, without ports')
  }
  for (const name of ['maxStreams', 'maxBufferedBytes'] as const) {
    if (!Number.isInteger(settings[name]) || settings[name] < 1) throw new InvalidOptionError(`dashboard.${name}`, 'an integer >= 1')
  }
  return { ...settings, allowedHosts: [...settings.allowedHosts] }
}

/** What the gateway's `upstream` check says about the watch it routes with. */
export function upstreamReport (upstream: string, watch: Pick<ServiceWatch, 'instances' | 'all' | 'state' | 'panic' | 'lastContact'>, now = Date.now()): CheckReport {
  const n = watch.instances.length
  if (watch.state === 'stale') {
    const seconds = Math.round((now - (watch.lastContact ?? now)) / 1000)
    return { status: 'warning', output: `Consul unreachable for ${seconds} s; serving the last known ${n} instance(s) of ${upstream}` }
  }
  if (n === 0) return { status: 'warning', output: `no instance of ${upstream} in Consul` }
  if (watch.panic) {
    const healthy = watch.all.filter((i) => !i.maintenance && i.status !== 'critical').length
    return { status: 'warning', output: `panic: ${healthy} of ${n} instance(s) of ${upstream} healthy in Consul; routing to all ${n}` }
  }
  return { status: 'passing', output: `${n} healthy instance(s) of ${upstream}` }
}

export default fp(gateway, { name: '@reg/gateway', fastify: '5.x' })
