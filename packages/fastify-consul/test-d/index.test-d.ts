// Type tests (tsd): what a strict TypeScript consumer of @reg/fastify-consul relies on. They import the
// package by name, so they check the built `dist` declarations exactly as a user's project sees them,
// and they use only what the package exports (its internals are free to move).
import type Consul from 'consul'
import fastify, { type FastifyInstance } from 'fastify'
import type { FastifyError } from '@fastify/error'
import healthPlugin from '@reg/fastify-health'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import { request, type Dispatcher } from 'undici'
import consulPlugin, {
  consulPlugin as namedPlugin,
  connectNative,
  type ConnectNative,
  type ConnectNativeOutbound,
  type ConnectIdentity,
  type ConnectSidecarOptions,
  type SidecarDispatcher,
  type SidecarUpstreamOptions,
  type UpstreamOptions,
  errors,
  classifyFailure,
  Deadline,
  DEADLINE_HEADER,
  type ConsulPluginOptions,
  type DiscoverOptions,
  type DispatcherOptions,
  type DispatcherStats,
  type FastifyConsul,
  type Instance,
  type InstanceStatus,
  type RegistrationState,
  type Failure,
  type DispatchFailure,
  type HealthSource,
  type ServiceRegistration,
  type PriorityLevel,
  type ServiceWatch,
  type WatchState
} from '@reg/fastify-consul'
import type * as api from '@reg/fastify-consul'

const app = fastify()

// The default and the named export are the same plugin.
expectType<typeof consulPlugin>(namedPlugin)

// ── options ──────────────────────────────────────────────────────────────────────────────────────
// Documented options as a user writes them: these must compile (the control for the rejections below).
app.register(consulPlugin, { service: { name: 'users' } })
app.register(consulPlugin, {
  service: {
    name: 'users',
    id: 'users-1',
    address: '10.0.0.7',
    port: 3000,
    tags: ['v1'],
    meta: { version: '1.2.3' },
    weights: { passing: 10, warning: 1 },
    enableTagOverride: false
  },
  check: { type: 'http', path: '/health', interval: '10s', timeout: 5000, deregisterCriticalServiceAfter: '1m' },
  register: true,
  failFast: false,
  selfHeal: true,
  deregisterTimeout: 2000,
  drainDelay: 500,
  retry: { base: 200, cap: 30_000 },
  consul: { address: 'https://consul.internal:8501', token: 'secret', secure: true, ca: '-----BEGIN…', rejectUnauthorized: true },
  discovery: { balancer: 'weighted', retries: 2 }
})
app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'ttl', ttl: '15s' } })
app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'tcp', interval: 10_000 } })
app.register(consulPlugin, { service: { name: 'users' }, check: false })
app.register(consulPlugin, { service: { name: 'users' }, consul: { tokenFile: '/run/secrets/consul' } })
declare const client: Consul
app.register(consulPlugin, { service: { name: 'users' }, client })
expectAssignable<ConsulPluginOptions>({ service: { name: 'users' }, register: false })

// `service.name` is required.
expectError(app.register(consulPlugin, {}))
expectError(app.register(consulPlugin, { service: {} }))
expectNotAssignable<ConsulPluginOptions>({ check: false })
// Unknown keys are rejected, at the top level and inside every nested object.
expectError(app.register(consulPlugin, { service: { name: 'users' }, deregisterAfter: 60_000 }))
expectError(app.register(consulPlugin, { service: { name: 'users', version: '1' } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, consul: { host: '127.0.0.1' } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, retry: { base: 1, factor: 2 } }))
expectError(app.register(consulPlugin, { service: { name: 'users', weights: { passing: 1, warning: 1, critical: 0 } } }))
// A check takes only its own type's fields.
expectError(app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'http', ttl: '10s' } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'ttl', interval: '10s' } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'tcp', path: '/health' } }))
// Wrong types are rejected.
expectError(app.register(consulPlugin, { service: { name: 42 } }))
expectError(app.register(consulPlugin, { service: { name: 'users', port: '3000' } }))
expectError(app.register(consulPlugin, { service: { name: 'users', tags: 'v1' } }))
expectError(app.register(consulPlugin, { service: { name: 'users', meta: { replicas: 3 } } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'h2ping' } }))
expectAssignable<ConsulPluginOptions>({ service: { name: 'users' }, check: { type: 'grpc', port: 9090, grpcService: 'users.v1.Users', failuresBeforeCritical: 3 } })
expectError(app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'grpc', path: '/health' } }))
expectAssignable<ConsulPluginOptions>({ service: { name: 'users' }, check: { method: 'HEAD', header: { authorization: ['Bearer x'], 'x-probe': 'consul' } } })
expectError(app.register(consulPlugin, { service: { name: 'users' }, check: true }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, check: { type: 'http', interval: true } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, drainDelay: true }))
expectAssignable<ConsulPluginOptions>({ service: { name: 'users' }, drainDelay: '500ms', deregisterTimeout: '2s', check: { interval: '2s' } })
expectError(app.register(consulPlugin, { service: { name: 'users' }, failFast: 'yes' }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, consul: { secure: 'true' } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, client: { agent: {} } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, discovery: { balancer: 'least-conn' } }))

// ── declaration merging: fastify.consul ──────────────────────────────────────────────────────────
expectType<FastifyConsul>(app.consul)
expectType<Consul>(app.consul.client)
expectType<RegistrationState>(app.consul.state)
expectType<ServiceRegistration | undefined>(app.consul.registration)
expectType<Promise<void>>(app.consul.register())
expectType<Promise<void>>(app.consul.deregister())
expectType<Promise<void>>(app.consul.shutdown())
expectError(app.consul.state = 'registered')
app.register(async (scope: FastifyInstance) => { expectType<FastifyConsul>(scope.consul) })
// Composed with @reg/fastify-health, both decorators are typed side by side.
app.register(healthPlugin).register(consulPlugin, { service: { name: 'users' } })
expectType<string>(app.health.path)

// ── discover() ───────────────────────────────────────────────────────────────────────────────────
const watch = app.consul.discover('users')
expectType<ServiceWatch>(watch)
expectType<ServiceWatch>(app.consul.discover('users', { tag: 'v1', dc: 'dc2', passingOnly: false, filter: 'Service.Meta.v == "1"', stale: true, balancer: 'random', wait: '30s', staleTtl: 60_000 }))
expectType<string>(watch.service)
expectType<readonly Instance[]>(watch.instances)
expectType<WatchState>(watch.state)
expectType<Promise<void>>(watch.ready)
expectType<Instance>(watch.pick())
expectType<Promise<void>>(watch.close())
expectType<ServiceWatch>(watch.on('change', (instances) => { expectType<readonly Instance[]>(instances) }))
expectType<ServiceWatch>(watch.on('state', (state) => { expectType<WatchState>(state) }))
expectError(watch.on('changed', () => {}))
const picked = watch.pick()
expectType<string>(picked.id)
expectType<string>(picked.host)
expectType<number>(picked.port)
expectType<number>(picked.weight)
expectType<InstanceStatus>(picked.status)
expectType<Readonly<Record<string, string>>>(picked.meta)
expectError(watch.instances.push(picked))
expectError(app.consul.discover())
expectError(app.consul.discover('users', { balancer: 'least-conn' }))
expectError(app.consul.discover('users', { passing: true }))
expectError(app.consul.discover('users', { wait: true }))
expectAssignable<DiscoverOptions>({ balancer: 'round-robin', panicThreshold: 0.5, cached: true })
expectType<readonly Instance[]>(watch.all)
expectType<boolean>(watch.panic)
expectType<number | undefined>(watch.lastContact)
expectType<boolean>(picked.maintenance)
expectType<ServiceWatch>(watch.on('panic', (panic) => { expectType<boolean>(panic) }))

// ── failover and locality (#25) ──────────────────────────────────────────────────────────────────
const failing = app.consul.discover('users', { failover: { datacenters: ['dc2', 'dc3'], nearest: 1 }, locality: { zone: 'eu-1a' } })
expectType<readonly PriorityLevel[]>(failing.priorities)
expectType<string | undefined>(failing.priorities[0]!.datacenter)
expectType<number>(failing.priorities[0]!.load)
expectType<WatchState>(failing.priorities[0]!.state)
expectType<readonly Instance[]>(failing.fallback)
expectType<string>(picked.datacenter)
expectType<Readonly<Record<string, string>>>(picked.nodeMeta)
expectAssignable<DiscoverOptions>({ locality: true })
expectError(app.consul.discover('users', { failover: ['dc2'] }))
expectError(app.consul.discover('users', { failover: { datacenters: 'dc2' } }))
expectError(app.consul.discover('users', { locality: 'eu-1a' }))
expectError(failing.priorities[0]!.load = 1)
fastify().register(consulPlugin, { service: { name: 'x', zone: 'eu-1a' }, discovery: { failover: { datacenters: ['dc2'] } } })
expectError(fastify().register(consulPlugin, { service: { name: 'x', zone: 1 } }))

// ── dispatcher() ─────────────────────────────────────────────────────────────────────────────────
const users = app.consul.dispatcher('users', { retries: 2, ejectionMs: 30_000, balancer: 'weighted', pool: { connections: 16 } })
// An undici Dispatcher: it plugs into undici's request() and @fastify/reply-from as is.
expectAssignable<Dispatcher>(users)
request('http://users/api', { dispatcher: users })
expectType<string>(users.service)
expectType<Promise<void>>(users.ready)
expectType<readonly Instance[]>(users.instances)
expectType<readonly Instance[]>(users.ejected)
expectAssignable<Readonly<DispatcherStats>>(users.stats)
expectType<number>(users.stats.requests)
users.events.on('eject', (instance) => { expectType<Instance>(instance) })
expectType<Promise<void>>(users.close())
expectError(app.consul.dispatcher('users', { retries: '2' }))
expectError(app.consul.dispatcher('users', { retry: 2 }))
expectError(app.consul.dispatcher(42))
expectAssignable<DispatcherOptions>({ retries: 0, tag: 'v1', balancer: 'least-request', retryOn: [502, 503], perTryTimeout: '1s', maxEjectionPercent: 50 })
// A dispatcher fed by an existing watch takes the dispatcher's own options only: the query is the watch's.
const shared = app.consul.dispatcher(watch, { retries: 1, balancer: 'least-request' })
expectAssignable<Dispatcher>(shared)
expectType<string>(shared.service)
expectError(app.consul.dispatcher(watch, { tag: 'v1' }))
shared.events.on('readmit', (instance, why, ejectedMs) => { expectType<Instance>(instance); expectType<'probe' | 'success'>(why); expectType<number>(ejectedMs) })
shared.events.on('probe', (instance, probe) => { expectType<Instance>(instance); expectType<{ passed: false, ms: number }>(probe) })
expectType<number>(shared.stats.probes)
expectType<number>(shared.stats.probeFailures)

// ── hedging and deadlines (#23) ─────────────────────────────────────────────────────────────────
expectAssignable<DispatcherOptions>({ hedge: true, deadline: '300ms', retryThrottle: { maxTokens: 20, tokenRatio: 0.5 } })
expectAssignable<DispatcherOptions>({ retryThrottle: false })
expectError(app.consul.dispatcher('users', { retryThrottle: true }))
expectAssignable<DispatcherOptions>({ hedge: { delay: 20, percentile: 0.99, minDelay: '5ms', maxDelay: '1s' } })
expectError(app.consul.dispatcher('users', { hedge: 'always' }))
expectError(app.consul.dispatcher('users', { hedge: { after: 20 } }))
expectType<number>(shared.stats.hedges)
expectType<number>(shared.stats.hedgesWon)
expectType<number>(shared.stats.deadlinesExceeded)
shared.events.on('hedge', (instance) => { expectType<Instance>(instance) })
shared.events.on('hedgeWon', (instance) => { expectType<Instance>(instance) })
app.register(consulPlugin, { service: { name: 'users' }, inboundDeadline: { max: '30s' } })
app.register(consulPlugin, { service: { name: 'users' }, inboundDeadline: false })
expectError(app.register(consulPlugin, { service: { name: 'users' }, inboundDeadline: true }))
app.get('/d', async (req) => {
  expectType<Deadline | undefined>(req.deadline)
  if (req.deadline !== undefined) {
    expectType<number>(req.deadline.remaining())
    expectType<boolean>(req.deadline.expired)
    expectType<number>(req.deadline.at)
  }
  return null
})
expectType<'x-envoy-expected-rq-timeout-ms'>(DEADLINE_HEADER)
expectType<'FST_REG_DISCOVERY_DEADLINE_EXCEEDED'>(new errors.DeadlineExceededError('users', 300).code)
expectType<504>(new errors.DeadlineExceededError('users', 300).statusCode)

// A dispatcher exposes the watch that feeds it, so a caller (the gateway) needs no query option names.
expectType<ServiceWatch>(shared.watch)
expectType<ServiceWatch>(users.watch)

// ── the failure classifier the dispatcher uses, for a proxy's 502/504 ─────────────────────────────
expectType<Failure>(classifyFailure(new Error('x')))
expectType<boolean>(classifyFailure(new Error('x')).late)
expectError(classifyFailure('ECONNREFUSED'))

// ── the public API, pinned: these are the runtime exports, and only these ───────────────────────────
expectType<'default' | 'consulPlugin' | 'errors' | 'classifyFailure' | 'Deadline' | 'DEADLINE_HEADER' | 'connectNative'>(null as unknown as keyof typeof api)
// The fastify.health that this plugin reads (structurally, @reg/fastify-health being optional) is the one fastify-health decorates.
expectAssignable<HealthSource>(app.health)

// ── errors: classes with literal codes and status codes ───────────────────────────────────────────
expectType<'FST_REG_CONSUL_INVALID_OPTION'>(new errors.InvalidOptionError('service.name', 'a string').code)
expectType<500>(new errors.InvalidOptionError('service.name', 'a string').statusCode)
expectType<'FST_REG_CONSUL_ALREADY_REGISTERED'>(new errors.AlreadyRegisteredError().code)
expectType<'FST_REG_CONSUL_TOKEN_FILE'>(new errors.TokenFileError('/x', 'ENOENT').code)
expectType<'FST_REG_CONSUL_UNREACHABLE'>(new errors.UnreachableError('127.0.0.1:8500', 'ECONNREFUSED').code)
expectType<503>(new errors.UnreachableError('127.0.0.1:8500', 'ECONNREFUSED').statusCode)
expectType<'FST_REG_CONSUL_HTTP'>(new errors.ConsulHttpError('GET /x', 500, 'boom').code)
expectType<'FST_REG_CONSUL_ACL_DENIED'>(new errors.AclDeniedError('PUT /x', 'Permission denied').code)
expectType<403>(new errors.AclDeniedError('PUT /x', 'Permission denied').statusCode)
expectType<'FST_REG_CONSUL_REGISTRATION_REJECTED'>(new errors.RegistrationRejectedError('users', 400, 'bad').code)
expectType<'FST_REG_CONSUL_NOT_LISTENING'>(new errors.NotListeningError().code)
expectType<'FST_REG_DISCOVERY_INVALID_OPTION'>(new errors.DiscoveryInvalidOptionError('wait', 'a duration').code)
expectType<'FST_REG_DISCOVERY_NO_INSTANCE'>(new errors.NoInstanceError('users').code)
expectType<503>(new errors.NoInstanceError('users').statusCode)
expectType<'FST_REG_DISCOVERY_BAD_RESPONSE'>(new errors.BadResponseError('GET /x', 'not JSON').code)
expectType<'FST_REG_DISCOVERY_CLOSED'>(new errors.WatchClosedError('users').code)
expectAssignable<FastifyError>(new errors.NoInstanceError('users'))
// The message arguments are typed: a wrong count or type is a compile error.
expectError(new errors.NoInstanceError())
expectError(new errors.ConsulHttpError('GET /x', '500', 'boom'))
// `instanceof` narrows an unknown error to the class and its literal code, as users catch them.
declare const caught: unknown
if (caught instanceof errors.NoInstanceError) {
  expectType<'FST_REG_DISCOVERY_NO_INSTANCE'>(caught.code)
}
// A dispatcher's give-up (#29): coded, 502, its cause and tries described by DispatchFailure.
expectType<'FST_REG_DISCOVERY_DISPATCH_FAILED'>(new errors.DispatchFailedError('users', 3, 'UND_ERR_HEADERS_TIMEOUT', { cause: new Error('x') }).code)
expectType<502>(new errors.DispatchFailedError('users', 3, 'UND_ERR_HEADERS_TIMEOUT', { cause: new Error('x') }).statusCode)
if (caught instanceof errors.DispatchFailedError) {
  const failure = caught as typeof caught & DispatchFailure
  expectType<number>(failure.tries)
  expectType<readonly string[]>(failure.instances)
}

// ── Connect native (#24) ─────────────────────────────────────────────────────────────────────────
const native = await connectNative({ service: 'users', consul: { address: '127.0.0.1:8500' }, readyTimeout: 5000 })
expectType<ConnectNative>(native)
expectType<string>(native.service)
expectType<true>(native.https.requestCert)
expectType<Promise<void>>(native.close())
fastify({ https: native.https }).register(consulPlugin, { service: { name: 'users' }, connect: native, check: { type: 'ttl' } })
expectError(connectNative({}))
// An identity for outbound calls only: no server TLS options, and the app may serve plain HTTP with an HTTP check.
const outbound = await connectNative({ service: 'gateway', inbound: false })
expectType<ConnectNativeOutbound>(outbound)
expectType<false>(outbound.inbound)
expectError(outbound.https)
expectError(outbound.authorizer)
expectAssignable<ConnectIdentity>(outbound)
expectAssignable<ConnectIdentity>(native)
expectType<true>(native.inbound)
fastify().register(consulPlugin, { service: { name: 'gateway' }, connect: outbound, check: { type: 'http' } })
declare const inbound: boolean
expectType<ConnectNative | ConnectNativeOutbound>(await connectNative({ service: 'gateway', inbound }))
expectError(connectNative({ service: 'gateway', inbound: 'no' }))
expectType<'native' | undefined>(picked.connect)
expectType<'FST_REG_CONNECT_IDENTITY_REQUIRED'>(new errors.ConnectIdentityRequiredError('users').code)
expectType<'FST_REG_CONNECT_UPSTREAM_REFUSED'>(new errors.ConnectUpstreamRefusedError('users', 'why').code)
expectError(fastify().register(consulPlugin, { service: { name: 'users' }, connect: { service: 'users' } }))

// ── Connect through a sidecar (#24) ──────────────────────────────────────────────────────────────
// `connect` is a union: a connectNative() handle, or the sidecar form.
expectAssignable<ConsulPluginOptions['connect']>(native)
expectAssignable<ConsulPluginOptions['connect']>({ sidecar: {} })
expectAssignable<ConsulPluginOptions['connect']>({ sidecar: { port: 21000, upstreams: [{ destinationName: 'users', localBindPort: 9191, datacenter: 'dc2', localBindAddress: '127.0.0.1' }] } })
const frozenUpstreams = [{ destinationName: 'users', localBindPort: 9191 }] as const
expectAssignable<ConsulPluginOptions['connect']>({ sidecar: { upstreams: frozenUpstreams } })
expectNotAssignable<ConsulPluginOptions['connect']>({ sidecar: { upstreams: [{ destinationName: 'users' }] } })
expectNotAssignable<ConsulPluginOptions['connect']>({ sidecar: { upstreams: [{ destinationName: 'users', localBindPort: '9191' }] } })
expectNotAssignable<ConsulPluginOptions['connect']>({ sidecar: { prot: 1 } })
expectNotAssignable<ConsulPluginOptions['connect']>({ native: true })
const sidecarOptions: ConnectSidecarOptions = { upstreams: [{ destinationName: 'users', localBindPort: 9191 } satisfies SidecarUpstreamOptions] }
fastify().register(consulPlugin, { service: { name: 'gateway' }, connect: { sidecar: sidecarOptions } })
const viaSidecar = fastify().consul.upstream('users', { deadline: '2s', datacenter: 'dc2' } satisfies UpstreamOptions)
expectType<SidecarDispatcher>(viaSidecar)
expectAssignable<Dispatcher>(viaSidecar)
expectType<string>(viaSidecar.origin)
expectType<string>(viaSidecar.service)
expectType<Promise<void>>(viaSidecar.close())
expectAssignable<Promise<unknown>>(request('http://users/list', { dispatcher: viaSidecar }))
expectError(fastify().consul.upstream('users', { retries: 2 }))
expectError(fastify().consul.upstream(42))
expectType<'FST_REG_CONNECT_UNKNOWN_UPSTREAM'>(new errors.ConnectUnknownUpstreamError('users', 'nothing').code)
expectType<502>(new errors.ConnectUpstreamFailedError('users', 'UND_ERR_SOCKET', { cause: new Error('x') }).statusCode)
