import { once } from 'node:events'
import consulPlugin, { type DispatcherOptions, type ServiceDispatcher, type ServiceWatch } from '@reg/fastify-consul'
import healthPlugin, { type CheckReport, type HealthPluginOptions } from '@reg/fastify-health'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { logClientAbort } from './client-abort.js'
import { dashboardRoutes } from './dashboard.js'
import { appMetrics, metricsRoute } from './metrics.js'
import { InvalidOptionError } from './errors.js'
import { proxyRoutes } from './proxy.js'
import { singleHost } from './request-target.js'

// The whole gateway as one plugin (the fastify/demo shape): tests register it on a bare Fastify() and
// inject; server.ts adds the logger, timeouts, listen and shutdown. It is wrapped in fastify-plugin so that
// `fastify.health`, `fastify.consul` and `fastify.gateway` reach the root, where server.ts and tests use
// them. The proxy routes live in their own, encapsulated plugin (src/proxy.ts).

export interface GatewayOptions {
  /** Consul service name of the instances `/users` is proxied to. Default `user-service`. */
  upstream?: string
  /** The gateway's own Consul service id. Default: @reg/fastify-consul's `gateway-${hostname}-${port}`, fixed at listen. */
  serviceId?: string
  /** How to reach the agent; unset fields fall back to CONSUL_HTTP_* (read by @reg/fastify-consul). */
  consul?: { address?: string, token?: string }
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
   * Serve the live view of the upstream at `GET /_gateway/` (and its event stream at `/_gateway/events`).
   * Default false: it shows internal addresses.
   */
  dashboard?: boolean
}

/** `fastify.gateway`: what the proxy runs on, for server.ts, tests and operators. */
export interface Gateway {
  /** Consul service name of the upstream. */
  readonly upstream: string
  /** The dispatcher every proxied request goes through: `stats`, `ejected`, `events` ('eject', 'readmit'). */
  readonly dispatcher: ServiceDispatcher
  /** The live view of the upstream's healthy instances (shared with the dispatcher's); the health check reads it. */
  readonly watch: ServiceWatch
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
   * 504 from one replica (say, one that is closing) retried on another within the retry budget.
   */
  discovery: Object.freeze({ balancer: 'least-request', perTryTimeout: '2s', retryOn: Object.freeze([502, 503, 504]) }) as Readonly<DispatcherOptions>,
  upstream: 'user-service',
  timeout: 10_000,
  upstreamCheck: Object.freeze({ interval: 1000, timeout: 2000 })
})

/** The Consul service name the gateway registers as. */
export const SERVICE_NAME = 'gateway'

const gateway: FastifyPluginAsync<GatewayOptions> = async function gateway (fastify, opts) {
  const upstream = opts.upstream ?? DEFAULTS.upstream
  const timeout = opts.timeout ?? DEFAULTS.timeout
  if (!Number.isInteger(timeout) || timeout < 1) throw new InvalidOptionError('timeout', 'an integer number of milliseconds >= 1')
  const discovery = opts.discovery ?? {}

  // Before anything else, on every route and on 404s: a request with two Host lines is refused (400).
  fastify.addHook('onRequest', singleHost)
  fastify.addHook('onRequest', logClientAbort)
  // Without it the plugins record into the global provider, a no-op unless the embedding process set one.
  const metrics = opts.metrics === false ? undefined : appMetrics()
  if (metrics !== undefined) {
    fastify.addHook('onClose', () => metrics.shutdown())
    await fastify.register(metricsRoute, { metrics })
  }
  const meterProvider = metrics?.provider

  // Health first: the Consul plugin reads fastify.health for the check's path and initial status.
  await fastify.register(healthPlugin, { ...opts.health, meterProvider })
  await fastify.register(consulPlugin, {
    service: { name: SERVICE_NAME, id: opts.serviceId },
    consul: opts.consul,
    register: opts.register,
    meterProvider
  })

  // Both start watching now, so the first Consul answer is usually in before the first request. The
  // dispatcher is fed by the watch itself: one blocking query on Consul, one view of the instances. The
  // gateway's one `discovery` option holds both halves; the query half goes to the watch.
  const { tag, dc, passingOnly, panicThreshold, filter, stale, cached, wait, staleTtl, backoff, rateLimit, ...dispatch } = { ...DEFAULTS.discovery, ...discovery }
  const watch = fastify.consul.discover(upstream, { tag, dc, passingOnly, panicThreshold, filter, stale, cached, wait, staleTtl, backoff, rateLimit, balancer: dispatch.balancer, random: dispatch.random })
  const dispatcher = fastify.consul.dispatcher(watch, dispatch)
  fastify.addHook('onClose', async () => {
    // @reg/fastify-consul would close them too; closing what we opened keeps that an implementation detail.
    await Promise.all([dispatcher.close(), watch.close()])
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

  fastify.decorate('gateway', Object.freeze({ upstream, dispatcher, watch }))

  await fastify.register(proxyRoutes, { upstream, dispatcher, timeout })
  if (opts.dashboard === true) await fastify.register(dashboardRoutes, { prefix: '/_gateway', dispatcher, watch })
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
