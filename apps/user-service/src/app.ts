import { hostname } from 'node:os'
import consulPlugin, { type ConnectNative } from '@reg/fastify-consul'
import healthPlugin, { type HealthPluginOptions } from '@reg/fastify-health'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { adminHealthRoute, appMetrics, logClientAbort, METRICS_PORT_META, metricsRoute, type AdminListener } from '@reg/app-kit'
import { openDatabase, type UsersDatabase } from './db.js'
import { usersRoutes } from './routes/users.js'
import { leaderKey, LiveSettingsSchema } from './live-settings.js'
import { maintenanceJob } from './maintenance-job.js'
import { PAGE_LIMIT } from './schemas.js'
import { UsersRepository } from './users-repository.js'

// The whole service as one plugin (the fastify/demo shape): tests register it on a bare Fastify() and inject;
// server.ts adds the logger, timeouts, listen and shutdown. It is wrapped in fastify-plugin so that
// `fastify.health` and `fastify.consul` reach the root, where server.ts and tests use them, and so that the
// x-instance-id hook also covers Fastify's own 404s.

interface CommonOptions {
  /** Consul service name. Default `user-service`. */
  serviceName?: string
  /** Consul service id. Default: @reg/fastify-consul's `${serviceName}-${hostname}-${port}`, fixed at listen. */
  serviceId?: string
  /** The `x-instance-id` response header. Default: the Consul service id. */
  instanceId?: string
  /** How to reach the agent; unset fields fall back to CONSUL_HTTP_* (read by @reg/fastify-consul). */
  consul?: { address?: string, token?: string }
  /**
   * The instance's zone, registered as meta `zone`: a caller with `locality` (the gateway with REG_ZONE)
   * prefers the instances of its own zone. Default: REG_ZONE, read by @reg/fastify-consul; none without it.
   */
  zone?: string
  /** Register in Consul on listen. Default true. Under inject() nothing is registered either way. */
  register?: boolean
  /** Passed to @reg/fastify-health (paths, details, thresholds); the database check is added here. */
  health?: Omit<HealthPluginOptions, 'checks'>
  /** The `database` health check. Defaults: timeout 1000 ms, interval 5000 ms. */
  databaseCheck?: { timeout?: number, interval?: number }
  /**
   * Consul KV and sessions: the default page size from `config/<serviceName>/pageSize` (live; `?limit=` wins),
   * and the maintenance job on the leader of `service/<serviceName>/leader` only. Needs Consul at boot
   * (the plugin's `config.failFast`). Default true; tests that inject without Consul set false.
   */
  consulKv?: boolean
  /** Milliseconds between two runs of the leader's maintenance job. Default 60000. */
  maintenanceInterval?: number
  /** Serve `GET /metrics` (Prometheus text): the plugins' metrics and Node's runtime and process metrics. Default true. */
  metrics?: boolean
  /**
   * The admin listener (@reg/app-kit's, which server.ts always passes): `/metrics` and a detailed `/health`
   * go on `admin.server`, in plain HTTP even under Connect, and `admin.port` is registered as meta
   * `metrics_port` for Prometheus. The public port then keeps a summary `/health` (the verdict only;
   * `health.details` still wins). Default none: everything on this instance, as a test that injects wants.
   */
  admin?: AdminListener
  /**
   * Connect-native mutual TLS (`REG_CONNECT=true`): the handle of @reg/fastify-consul's `connectNative()`
   * for this service, whose `https` the app's server was built with. Registered with
   * `Connect: { Native: true }`, every caller's certificate checked against the intentions, and the
   * Consul check a TTL driven by /health's status (Consul cannot present a client certificate). Default none.
   */
  connect?: ConnectNative
}

export type UserServiceOptions = CommonOptions & (
  /** SQLite file, opened here and closed on close. Default `:memory:`. */
  | { dbPath?: string, db?: never }
  /** An open database (see openDatabase), used as is and never closed by the app. */
  | { db: UsersDatabase, dbPath?: never }
)

const DEFAULT_SERVICE_NAME = 'user-service'

const userService: FastifyPluginAsync<UserServiceOptions> = async function userService (fastify, opts) {
  const serviceName = opts.serviceName ?? DEFAULT_SERVICE_NAME
  const consulKv = opts.consulKv ?? true
  const db = opts.db ?? openDatabase(opts.dbPath ?? ':memory:')
  if (opts.db === undefined) fastify.addHook('onClose', async () => { db.close() })

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
  // Prepared once; better-sqlite3 is synchronous, so the timeout bounds the report, not the call.
  const ping = db.prepare('SELECT 1')
  fastify.health.addCheck('database', () => { ping.get() }, {
    critical: true,
    timeout: opts.databaseCheck?.timeout ?? 1000,
    interval: opts.databaseCheck?.interval ?? 5000
  })

  await fastify.register(consulPlugin, {
    service: { name: serviceName, id: opts.serviceId, zone: opts.zone, ...(admin !== undefined && metrics !== undefined && { meta: { [METRICS_PORT_META]: String(admin.port) } }) },
    consul: opts.consul,
    register: opts.register,
    meterProvider,
    connect: opts.connect,
    // Spring's layout: prefix `config`, contexts `application` then the service name.
    ...(consulKv ? { config: { schema: LiveSettingsSchema } } : {})
  })

  let defaultLimit = (): number => PAGE_LIMIT.default
  if (consulKv) {
    defaultLimit = () => fastify.config.pageSize
    // The plugin releases the key in preClose: a rolling restart hands the job over at once.
    const job = maintenanceJob(fastify.consul.leader(leaderKey(serviceName)), db, opts.maintenanceInterval ?? 60_000, fastify.log)
    fastify.addHook('onClose', async () => { job.stop() })
  }

  const configuredId = opts.instanceId ?? opts.serviceId
  // Before the first registration (and under inject) there is no Consul id yet; name and host still tell replicas on different hosts apart.
  const fallbackId = `${serviceName}-${hostname()}`
  fastify.addHook('onRequest', (_request, reply, done) => {
    // The registration getter returns cached state: no I/O on the request path.
    reply.header('x-instance-id', configuredId ?? fastify.consul.registration?.id ?? fallbackId)
    done()
  })

  fastify.addHook('onRequest', logClientAbort)

  await fastify.register(usersRoutes, { prefix: '/users', repository: new UsersRepository(db), defaultLimit })
}

export default fp(userService, { name: '@reg/user-service', fastify: '5.x' })
