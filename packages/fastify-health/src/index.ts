import underPressure from '@fastify/under-pressure'
import { metrics } from '@opentelemetry/api'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { CheckScheduler, type CheckFn, type CheckOptions } from './checks.js'
import { AlreadyRegisteredError, UnderPressureConflictError } from './errors.js'
import { HealthState, type HealthListener, type HealthStatus } from './health-state.js'
import { healthMetrics } from './metrics.js'
import { checkDefinition, normalizeOptions, type HealthPluginOptions } from './options.js'
import { letThrough, pressureReader, underPressureOptions } from './pressure.js'
import { HTTP_STATUS, JSON_TYPE, LIVE_BODY, readinessResponses, SummaryBody } from './response.js'

// The Fastify adapter: options in, decorator, two routes, two hooks. The work lives in the modules it wires.

export type { CheckFn, CheckOptions, CheckReport, CheckResult, CheckStatus } from './checks.js'
export type { HealthListener, HealthStatus } from './health-state.js'
export type { CheckSpec, HealthPluginOptions, UnderPressureOptions } from './options.js'
export type { PressureMetric } from './pressure.js'
export { DEFAULTS } from './options.js'
export { STATUS_VALUE } from './metrics.js'
export { HTTP_STATUS } from './response.js'
export * from './errors.js'

/** `fastify.health`: the readiness state, for routes and for other plugins. */
export interface FastifyHealth {
  /** The readiness route as mounted, prefix included: what a Consul HTTP check should target. */
  readonly path: string
  /** The liveness route as mounted, prefix included. */
  readonly livePath: string
  /**
   * Adds a check. Before ready it first runs in onReady, which waits for it; after ready it starts at once and
   * counts from its first result. Throws FST_REG_HEALTH_DUPLICATE_CHECK or FST_REG_HEALTH_INVALID_CHECK.
   */
  addCheck (name: string, fn: CheckFn, options?: CheckOptions): void
  /** The current aggregate. Cached and frozen: reading it never runs a check or waits for anything. */
  status (): HealthStatus
  /** Calls `listener` whenever `status` or `draining` changes; returns an unsubscribe function. */
  onChange (listener: HealthListener): () => void
  /** Readiness turns critical (503) for good while every other route keeps serving. Idempotent. */
  drain (): void
}

declare module 'fastify' {
  interface FastifyInstance {
    health: FastifyHealth
  }
}

const NAME = '@reg/fastify-health'

const plugin: FastifyPluginAsync<HealthPluginOptions> = async function healthPlugin (fastify, opts) {
  if (fastify.hasDecorator('health')) throw new AlreadyRegisteredError()
  if (fastify.hasDecorator('isUnderPressure')) throw new UnderPressureConflictError()
  // Optional only in the type: Fastify's config schema fills in its default (10 s). 0 disables the limit.
  const startupBudget = fastify.initialConfig.pluginTimeout as number
  const options = normalizeOptions(opts, startupBudget)
  const log = fastify.log.child({ plugin: NAME })
  const state = new HealthState(log, options.pressure.status)
  // The global provider is read now, at registration: an app sets it up before registering plugins.
  const meters = healthMetrics(options.meterProvider ?? metrics.getMeterProvider(), () => status())
  const scheduler = new CheckScheduler((name, result) => {
    meters.checked(name, result)
    state.setResult(name, result)
  })
  for (const def of options.checks) scheduler.add(def)

  // Registered from inside this fastify-plugin, so its onRequest hook lands in the scope we were registered in:
  // with loadShedding, exactly the routes this plugin reports on.
  await fastify.register(underPressure, underPressureOptions(options.pressure))

  const readPressure = pressureReader(options.pressure)
  // Every threshold off means under-pressure never reports pressure: skip the reading entirely.
  const syncPressure = readPressure === undefined
    ? () => {}
    : () => {
        const under = fastify.isUnderPressure()
        // The common case, not under pressure now or before, costs one call and allocates nothing.
        if (!under && !state.snapshot().underPressure) return
        state.setPressure(under ? readPressure(fastify.memoryUsage()) : [])
      }

  // Pressure is sampled by under-pressure, so nothing would tell onChange listeners (Consul TTL updates)
  // about it; this timer polls the sample at the same pace. Requests also sync before they answer.
  let pressureTimer: NodeJS.Timeout | undefined

  function status (): HealthStatus {
    syncPressure()
    return state.snapshot()
  }

  const health: FastifyHealth = Object.freeze({
    path: fastify.prefix + options.path,
    livePath: fastify.prefix + options.livePath,
    addCheck (name: string, fn: CheckFn, checkOptions?: CheckOptions): void {
      scheduler.add(checkDefinition(name, fn, checkOptions, options, scheduler.started ? 0 : startupBudget))
    },
    status,
    onChange: (listener: HealthListener) => state.onChange(listener),
    drain: () => state.drain()
  })
  fastify.decorate('health', health)

  // Our own routes answer even while load shedding is on: readiness must be able to say why it is 503,
  // and liveness must not restart an instance that is merely busy.
  const config = { pressureHandler: letThrough }

  // The body only changes when the snapshot does, so it is serialised once per change, not per probe.
  let servedSnapshot: HealthStatus | undefined
  let servedBody: ReturnType<FastifyReply['serialize']> = ''

  const readiness: RouteOptions = {
    method: ['GET', 'HEAD'],
    url: options.path,
    schema: { response: readinessResponses(options.details) },
    config,
    handler (_request: FastifyRequest, reply: FastifyReply): void {
      const snapshot = status()
      reply.code(HTTP_STATUS[snapshot.status])
      if (snapshot !== servedSnapshot) {
        servedBody = reply.serialize(options.details ? snapshot : { status: snapshot.status })
        servedSnapshot = snapshot
      }
      reply.type(JSON_TYPE).send(servedBody)
    }
  }
  fastify.route(readiness)

  const liveness: RouteOptions = {
    method: ['GET', 'HEAD'],
    url: options.livePath,
    schema: { response: { 200: SummaryBody } },
    config,
    handler (_request: FastifyRequest, reply: FastifyReply): void {
      reply.type(JSON_TYPE).send(LIVE_BODY)
    }
  }
  fastify.route(liveness)

  fastify.addHook('onReady', async function startHealthChecks () {
    if (readPressure !== undefined) {
      const timer = setTimeout(() => {
        syncPressure()
        timer.refresh()
      }, options.pressure.sampleInterval)
      timer.unref()
      pressureTimer = timer
    }
    // Awaited, so the first answer after ready() is real rather than an optimistic "passing".
    await scheduler.start()
  })

  fastify.addHook('onClose', async function stopHealthChecks () {
    clearTimeout(pressureTimer)
    scheduler.stop()
    meters.close()
  })
}

export const healthPlugin = fp(plugin, { name: NAME, fastify: '5.x' })
export default healthPlugin
