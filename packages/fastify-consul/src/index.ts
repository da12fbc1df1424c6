import type { AddressInfo } from 'node:net'
import type { Server as TlsServer, TLSSocket } from 'node:tls'
import { randomBytes } from 'node:crypto'
import { metrics } from '@opentelemetry/api'
import type Consul from 'consul'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { consulClient } from './consul/client.js'
import { resolveConnection } from './consul/connection.js'
import { preflight } from './consul/preflight.js'
import { ConsulHttp } from './consul/http.js'
import type { DiscoverOptions, DispatcherOptions, DispatchOptions } from './discovery/options.js'
import type { ServiceDispatcher } from './discovery/dispatch/service-dispatcher.js'
import { SidecarUpstreams, type SidecarDispatcher, type UpstreamOptions } from './discovery/dispatch/sidecar-dispatcher.js'
import { DiscoveryRegistry, checkFailoverDatacenters } from './discovery/registry.js'
import type { ServiceWatch } from './discovery/watch/service-watch.js'
import { LiveConfig, type ConfigHandle } from './config/live-config.js'
import { LeaderElection, type LeaderHandle } from './leader/leader-election.js'
import { normalizeLeaderOptions, type LeaderOptions } from './leader/options.js'
import { configMetrics, consulMetrics, leaderMetrics } from './metrics.js'
import { Deadline, DEADLINE_HEADER, parseDeadlineHeader, runWithDeadline } from './discovery/dispatch/deadline.js'
import { AlreadyRegisteredError, InvalidOptionError, NotListeningError } from './errors.js'
import { attachServerTls } from './connect/server-tls.js'
import { CONNECT_CHECK, connectCheck } from './connect/health-check.js'
import { sidecarConnectBlock } from './connect/sidecar.js'
import { normalizeOptions, type ConsulPluginOptions, type NormalizedOptions } from './options.js'
import { buildDefinition, resolveAddress, type ServiceRegistration } from './registration/definition.js'
import { advertisedStatus, registrationCheck, type HealthSource, REGISTRATION_CHECK, REGISTRATION_CHECK_INTERVAL } from './registration/health-contribution.js'
import { shutdownSequence } from './registration/shutdown.js'
import { Registrar, type RegistrationState } from './registration/registrar.js'

export interface FastifyConsul {
  /** The `consul` npm client: yours if you passed `client`, else one built from the same connection settings. */
  readonly client: Consul
  /** What was last sent to Consul, or undefined before the first registration. */
  readonly registration: ServiceRegistration | undefined
  /** State `registering` may be a retry loop: this is why the last try failed (coded, with Consul's reason), until one succeeds. */
  readonly registrationError: (Error & { code?: string }) | undefined
  readonly state: RegistrationState
  /** Registers now (after listen). Rejects on failure: for apps that set `register: false`. */
  register (): Promise<void>
  /** Deregisters now; idempotent and bounded by `deregisterTimeout`. */
  deregister (): Promise<void>
  /**
   * The zero-downtime exit, to call instead of `fastify.close()` (e.g. from close-with-grace):
   * drain health and deregister → wait until Consul's healthy view no longer lists us, plus
   * `drainDelay` → `fastify.close()`. Steps run before close() because Fastify answers 503 on
   * kept-alive sockets as soon as close() starts. Each step is logged with its duration.
   */
  shutdown (): Promise<void>
  /**
   * A shared, reference-counted live view of `service`'s healthy instances, served from memory:
   * `instances`, `pick()`, `ready`, `on('change')`, `close()`. One blocking query per distinct query.
   */
  discover (service: string, opts?: DiscoverOptions): ServiceWatch
  /**
   * An undici Dispatcher that sends each request to a picked instance of `service`, retries
   * connection failures of idempotent requests on another instance, and ejects refusing ones:
   * `request('http://users/path', { dispatcher })` or @fastify/reply-from's `undici` option.
   * Given a watch from `discover()`, it shares it (one query, one view) and takes only its own options.
   */
  dispatcher (service: string, opts?: DispatcherOptions): ServiceDispatcher
  dispatcher (watch: ServiceWatch, opts?: DispatchOptions): ServiceDispatcher
  /**
   * An undici Dispatcher to `service` through this service's sidecar (`connect: { sidecar }`): every
   * request goes to the upstream's local port, whatever origin it names, and the sidecar carries the
   * mutual TLS. Deadlines apply; no retries and no ejection (one local target). The same name and
   * options give the same dispatcher (call it per request freely); closed with the app.
   * Throws FST_REG_CONNECT_UNKNOWN_UPSTREAM when the sidecar lists no such upstream.
   */
  upstream (service: string, opts?: UpstreamOptions): SidecarDispatcher
  /**
   * Contends for leadership on a KV `key` with a Consul session (Go's api.Lock): `isLeader`, `elected`
   * and `lost` events, `release()`. Every handle is released in preClose, so a rolling restart hands over
   * at once. Throws FST_REG_LEADER_INVALID_OPTION.
   */
  leader (key: string, options?: LeaderOptions): LeaderHandle
  /** The live configuration's state and events (`change`, `refused`, …); undefined without the `config` option. */
  readonly config: ConfigHandle<ConsulConfig> | undefined
}

/**
 * The type of `fastify.config`. Declare your schema's type into it once:
 * `declare module '@reg/fastify-consul' { interface ConsulConfig extends Static<typeof MySchema> {} }`.
 */
export interface ConsulConfig {}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The caller's deadline, from its `x-envoy-expected-rq-timeout-ms` header (clamped to
     * `inboundDeadline.max`), or undefined. Dispatches made while handling this request inherit it.
     */
    deadline: Deadline | undefined
  }
  interface FastifyInstance {
    consul: FastifyConsul
    /** The configuration from Consul KV now (with the `config` option): frozen, replaced whole on each good change. */
    config: Readonly<ConsulConfig>
  }
}

type HealthDecorator = HealthSource & { path: string, drain?: () => void, addCheck?: (name: string, fn: () => unknown, opts: { critical: boolean, interval: number }) => void }

function healthOf (fastify: FastifyInstance): HealthDecorator | undefined {
  // Structural lookup instead of an import: @reg/fastify-health is optional.
  const health = (fastify as unknown as { health?: HealthDecorator }).health
  return health && typeof health.status === 'function' ? health : undefined
}

const consul: FastifyPluginAsync<ConsulPluginOptions> = async function consul (fastify, options) {
  if (fastify.hasDecorator('consul')) throw new AlreadyRegisteredError()
  const opts: NormalizedOptions = normalizeOptions(options)
  // One per process boot; see DefinitionInput.bootId.
  const bootId = randomBytes(4).toString('hex')
  const connection = resolveConnection(opts.consul)
  const log = fastify.log.child({ plugin: '@reg/fastify-consul' })
  const http = new ConsulHttp({ connection })
  // ── configuration from KV (#28): loaded before anything else is built, so a failure leaves nothing open ──
  const config = opts.config === undefined ? undefined : new LiveConfig({ http, log, settings: opts.config })
  if (config !== undefined) {
    await config.load().catch(async (err: Error) => {
      await http.close()
      throw err
    })
    fastify.decorate('config', { getter: () => config.current })
    const health = (fastify as unknown as { health?: { addCheck?: (name: string, fn: () => unknown, o: object) => void } }).health
    health?.addCheck?.('config', () => {
      const problem = config.problem
      return problem === undefined ? undefined : { status: 'warning', output: problem }
    }, { critical: false, interval: 1000 })
  }
  // ── end of configuration wiring ──
  const ownsClient = opts.client === undefined
  const client = opts.client ?? consulClient(connection, http)
  const discovery = new DiscoveryRegistry({ http, log, defaults: opts.discovery, zone: opts.service.zone, connect: opts.connect?.certificates })
  const registrar = new Registrar({
    http,
    log,
    retry: opts.retry,
    selfHeal: opts.selfHeal,
    deregisterTimeout: opts.deregisterTimeout,
    ttl: opts.check.type === 'ttl' ? opts.check.ttl : undefined
  })
  registrar.on('state', (state) => log.debug({ state }, 'consul registration state'))
  // /health says "not registered: <Consul's reason>" as a warning while registration retries.
  healthOf(fastify)?.addCheck?.(REGISTRATION_CHECK, registrationCheck(registrar), { critical: false, interval: REGISTRATION_CHECK_INTERVAL })
  // The global provider is read now, at registration: an app sets it up before registering plugins.
  const meters = consulMetrics(opts.meterProvider ?? metrics.getMeterProvider(), {
    registration: () => ({ service: opts.service.name, id: registrar.registration?.id ?? opts.service.id, state: registrar.state }),
    watchers: () => discovery.running,
    onHealed: (listener) => {
      registrar.on('healed', listener)
      return () => { registrar.off('healed', listener) }
    }
  })
  const configMeters = config === undefined ? undefined : configMetrics(opts.meterProvider ?? metrics.getMeterProvider(), config)
  // ── leader election (#28): the logic lives in leader/; released in preClose for a fast handover ──
  const leaders = new Set<LeaderElection>()
  const leaderMeters = leaderMetrics(opts.meterProvider ?? metrics.getMeterProvider(), () => leaders)
  fastify.addHook('preClose', async () => { await Promise.all([...leaders].map((l) => l.release())) })
  // ── end of leader wiring ──

  /** The registration for the socket we are bound to; needs listen() unless service.port is set. */
  function definition (): ReturnType<typeof buildDefinition> {
    const bound = fastify.server.address() as AddressInfo | string | null
    const boundInfo = typeof bound === 'object' && bound !== null ? bound : undefined
    const port = opts.service.port ?? boundInfo?.port
    if (port === undefined) throw new NotListeningError()
    const { address, rule } = resolveAddress(opts.service.address, boundInfo?.address)
    if (rule !== 'service.address') log.info({ address, rule }, 'consul service address chosen')
    const health = healthOf(fastify)
    return buildDefinition({
      service: opts.service,
      check: opts.check,
      address,
      port,
      healthPath: health?.path ?? '/health',
      // With an initial Status we are discoverable as soon as we listen, not after the first probe.
      initialStatus: health ? advertisedStatus(health.status()) : 'passing',
      bootId,
      connect: opts.connect?.inbound === true ? { Native: true } : opts.sidecar === undefined ? undefined : sidecarConnectBlock(opts.sidecar)
    })
  }

  async function register (failFast: boolean): Promise<void> {
    const { body, registration } = definition()
    await registrar.register(body, registration, healthOf(fastify), failFast)
  }

  // ── deadlines that travel (#23): the caller's budget becomes request.deadline, inherited by dispatches ──
  fastify.decorateRequest('deadline', undefined)
  const inbound = opts.inboundDeadline
  if (inbound !== false) {
    fastify.addHook('onRequest', (request, _reply, done) => {
      const ms = parseDeadlineHeader(request.headers[DEADLINE_HEADER], inbound.max)
      if (ms === undefined) {
        done()
        return
      }
      const deadline = Deadline.in(ms)
      request.deadline = deadline
      // Everything after this hook (handlers, their awaits, their dispatches) runs in this context.
      runWithDeadline(deadline, done)
    })
  }

  // Sidecar upstream dispatchers (#24): shared per upstream, closed with the app, like discovery's.
  const upstreams = new SidecarUpstreams(opts.sidecar, opts.discovery.deadline)
  fastify.decorate('consul', {
    client,
    get registration () { return registrar.registration },
    get state () { return registrar.state },
    get registrationError () { return registrar.lastError },
    register: () => register(true),
    deregister: () => registrar.deregister(),
    shutdown,
    discover: (service, options) => discovery.discover(service, options),
    dispatcher: (target: string | ServiceWatch, options?: DispatcherOptions) => {
      const dispatcher = discovery.dispatcher(target, options)
      meters.observe(dispatcher)
      return dispatcher
    },
    upstream: (service, options) => upstreams.get(service, options),
    leader: (key, options) => {
      const election = new LeaderElection({ http, log, settings: normalizeLeaderOptions(key, options) })
      leaders.add(election)
      return election
    },
    config: config as ConfigHandle<ConsulConfig> | undefined
  } satisfies FastifyConsul)

  let shuttingDown: Promise<void> | undefined
  function shutdown (): Promise<void> {
    shuttingDown ??= runShutdown()
    return shuttingDown
  }

  function runShutdown (): Promise<void> {
    return shutdownSequence({
      http,
      log,
      registrar,
      drainHealth: () => healthOf(fastify)?.drain?.(),
      deregisterTimeout: opts.deregisterTimeout,
      drainDelay: opts.drainDelay,
      close: () => fastify.close()
    })
  }

  // ── Connect native (#24): the logic lives in connect/; here the server's TLS and every request ──
  const connect = opts.connect
  let detachTls = (): void => {}
  if (connect !== undefined) healthOf(fastify)?.addCheck?.(CONNECT_CHECK, connectCheck(connect.certificates), { critical: false, interval: 1000 })
  if (connect?.inbound === true) {
    fastify.addHook('onReady', async () => {
      const server = fastify.server as unknown as TlsServer
      if (typeof server.setSecureContext !== 'function') throw new InvalidOptionError('connect', 'an app created with Fastify({ https: connect.https }): this server speaks plain HTTP')
      detachTls = attachServerTls(server, connect.certificates, { log })
    })
    // Callback style: a caller already allowed costs no promise per request.
    fastify.addHook('onRequest', (request, _reply, done) => {
      const verdict = connect.authorizer.check(request.raw.socket as TLSSocket)
      if (verdict === undefined) done()
      else verdict.then(() => done(), done)
    })
    fastify.addHook('onClose', async () => {
      detachTls()
      await connect.close()
    })
  } else if (connect !== undefined) {
    // Outbound only (`inbound: false`): the identity serves the dispatchers; the plugin still owns its close.
    fastify.addHook('onClose', async () => { await connect.close() })
  }
  // ── end of Connect wiring ──

  fastify.addHook('onReady', async () => {
    // Fail before binding: an unreachable agent or an unknown token is a deploy error.
    if (opts.failFast) await preflight(http, connection.address)
    // A datacenter name in the plugin's failover list that Consul does not know is a deploy error too;
    // without failFast an unreachable agent only postpones the check to each watch's `ready`.
    const failover = opts.discovery.failover
    if (failover?.datacenters !== undefined && failover.datacenters.length > 0) {
      await checkFailoverDatacenters(http, failover.datacenters, 'discovery.failover', opts.failFast, log)
    }
  })

  // Known only once bound; dispatchers then never route to our own address (a forwarding loop).
  fastify.addHook('onListen', async () => {
    // A unix socket (a string here) has no origin an instance could be registered at.
    discovery.listening(fastify.addresses().filter((a) => typeof a !== 'string'))
  })

  if (opts.register) {
    fastify.addHook('onListen', async () => {
      // A background task: the app serves while we retry; failures are logged by the registrar.
      register(false).catch((err: Error) => log.error({ err }, 'consul registration failed'))
    })
  }

  // preClose runs before the server stops accepting, so we stop advertising first.
  fastify.addHook('preClose', async () => {
    await registrar.deregister()
  })

  fastify.addHook('onClose', async () => {
    meters.close()
    configMeters?.close()
    leaderMeters.close()
    await Promise.all([...leaders].map((l) => l.release()))
    await config?.close()
    registrar.close()
    await discovery.close()
    await upstreams.close()
    if (ownsClient) (client as unknown as { destroy (): void }).destroy()
    await http.close()
  })
}

export const consulPlugin = fp(consul, { name: '@reg/fastify-consul', fastify: '5.x' })
export default consulPlugin
export type { ConsulConnectionOptions } from './consul/connection.js'
export type { ConsulPluginOptions, GrpcCheckOptions, HttpCheckOptions, TcpCheckOptions, TtlCheckOptions, ServiceOptions } from './options.js'
export type { RegistrationState } from './registration/registrar.js'
export type { HealthSource } from './registration/health-contribution.js'
// DiscoveryOptions: the name people guess for discover()'s options, the same type.
export type { DiscoverOptions, DiscoverOptions as DiscoveryOptions, DispatcherOptions, DispatchOptions } from './discovery/options.js'
export type { ServiceDispatcher, DispatcherStats, DispatcherEvents } from './discovery/dispatch/service-dispatcher.js'
export type { SidecarDispatcher, UpstreamOptions } from './discovery/dispatch/sidecar-dispatcher.js'
export type { ConnectSidecarOptions, SidecarUpstreamOptions } from './connect/sidecar.js'
export type { RequestOutcome } from './discovery/dispatch/retry-policy.js'
export type { PriorityLevel, ServiceWatch, WatchState } from './discovery/watch/service-watch.js'
export type { Instance, InstanceStatus } from './discovery/watch/instance.js'
export type { BalancerName } from './discovery/lb/balancer.js'
export type { FailureKind, Failure } from './discovery/dispatch/failure.js'
export { classifyFailure } from './discovery/dispatch/failure.js'
export type { ServiceRegistration, RegisteredCheck } from './registration/definition.js'
export type { ConfigHandle, ConfigRefusal, ConfigState } from './config/live-config.js'
export type { ConfigOptions } from './config/options.js'
export type { ConfigFormat } from './config/formats.js'
export type { LeaderHandle } from './leader/leader-election.js'
export type { LeaderOptions } from './leader/options.js'
export type { DispatchFailure } from './errors.js'
export { Deadline, DEADLINE_HEADER } from './discovery/dispatch/deadline.js'
export * as errors from './errors.js'
export { connectNative, type ConnectIdentity, type ConnectNative, type ConnectNativeOptions, type ConnectNativeOutbound } from './connect/native.js'
