import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { MeterProvider } from '@opentelemetry/api'
import type Consul from 'consul'
import { ConnectionSchema, type ConsulConnectionOptions } from './consul/connection.js'
import { BackoffDurations, Duration, msOr } from './consul/duration.js'
import { validateDiscoveryOptions, type DispatcherOptions } from './discovery/options.js'
import { normalizeConfigOptions, type ConfigOptions, type ConfigSettings } from './config/options.js'
import { CONNECT_NATIVE, type ConnectNative, type ConnectNativeOutbound } from './connect/native.js'
import { isSidecarForm, normalizeSidecar, type ConnectSidecarOptions, type SidecarSettings } from './connect/sidecar.js'
import { fail, normalizeCheck, normalizeService, type CheckConfig, type GrpcCheckOptions, type HttpCheckOptions, type ServiceOptions, type TcpCheckOptions, type TtlCheckOptions } from './registration/options.js'
import type { Unset } from './util/unset.js'
import { firstProblem, objectFormProblem } from './util/validate.js'

// The plugin's options: one schema composed from the layers' own (registration, discovery, connection),
// normalized once, here. Each layer's part keeps its own error code and names its fields as written.

const InboundDeadline = Type.Object({ max: Type.Optional(Duration(1)) }, { additionalProperties: false, description: 'an object { max? }' })
// Checked on its own when an object is given, so the message names `inboundDeadline.max` (see discovery's `hedge`).
const inboundDeadlineSchema = TypeCompiler.Compile(InboundDeadline)

const Schema = Type.Object({
  // Checked by their layers, which know their rules and their fields' names.
  service: Type.Optional(Type.Unknown()),
  check: Type.Optional(Type.Unknown()),
  discovery: Type.Optional(Type.Unknown()),
  register: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  failFast: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  selfHeal: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  deregisterTimeout: Type.Optional(Duration(1)),
  drainDelay: Type.Optional(Duration(0)),
  retry: Type.Optional(BackoffDurations()),
  consul: Type.Optional(ConnectionSchema),
  client: Type.Optional(Type.Unknown()),
  meterProvider: Type.Optional(Type.Unknown()),
  inboundDeadline: Type.Optional(Type.Union([Type.Literal(false), InboundDeadline], { description: 'false or an object { max? }' })),
  // Checked by config/options.ts (its schema holds the user's TypeBox schema, which is not walked here).
  config: Type.Optional(Type.Unknown()),
  // Checked in normalizeConnectCheck() (a handle with live keepers, not a value to walk) or normalizeSidecar().
  connect: Type.Optional(Type.Unknown())
}, { additionalProperties: false, description: 'an options object with at least { service: { name } }' })

const compiled = TypeCompiler.Compile(Schema)

export type { GrpcCheckOptions, HttpCheckOptions, TcpCheckOptions, TtlCheckOptions, ServiceOptions, CheckConfig }

export interface ConsulPluginOptions {
  /** What to register. Only `name` is required. */
  service: ServiceOptions
  /** The check Consul runs (http, tcp, grpc) or expects (ttl); `false` for none. Default `{ type: 'http' }`. */
  check?: false | HttpCheckOptions | TcpCheckOptions | GrpcCheckOptions | TtlCheckOptions | undefined
  /** Register on listen. `false` leaves it to `fastify.consul.register()`. Default true. */
  register?: boolean | undefined
  /** Make `ready()`/`listen()` reject when the agent is unreachable or the token unknown. Default false. */
  failFast?: boolean | undefined
  /** Re-register when the agent forgets us (restart, wiped data). Default true. */
  selfHeal?: boolean | undefined
  /** Longest time deregistration may hold up shutdown: ms or a duration. Default 2s. */
  deregisterTimeout?: number | string | undefined
  /** Extra wait in shutdown() after leaving Consul's healthy view, for callers' caches. Default 500ms. */
  drainDelay?: number | string | undefined
  /** Backoff for registration retries: full jitter in [0, min(cap, base·2^n)). Default { base: 200, cap: 30000 } (ms). */
  retry?: { base?: number | string | undefined, cap?: number | string | undefined } | undefined
  /** How to reach the agent; every field falls back to Consul's CLI environment variables. */
  consul?: Unset<ConsulConnectionOptions> | undefined
  /** A `consul` client to expose as `fastify.consul.client`; it is never closed by the plugin. */
  client?: Consul | undefined
  /** Defaults under every discover()/dispatcher() call's own options; validated at ready(). */
  discovery?: DispatcherOptions | undefined
  /**
   * Where the plugin's metrics go (see README, Metrics). Default: the global one from
   * `@opentelemetry/api`, read when the plugin is registered, which is a no-op until an SDK sets it.
   */
  meterProvider?: MeterProvider | undefined
  /** Configuration from Consul KV, typed by a TypeBox schema, live-reloaded (see README, Configuration from KV). */
  config?: ConfigOptions | undefined
  /**
   * Consul Connect (see README, Connect). Either Connect native: the handle of `await connectNative({ service })`,
   * whose `https` the app was created with; the plugin registers `Connect: { Native: true }`, swaps the TLS
   * context on rotation, and authorizes every request against intentions, and its dispatchers dial
   * Connect-native instances with the same identity (with `connectNative({ service, inbound: false })` the
   * app serves plain HTTP and uses the identity only to dial). Or `{ sidecar: { port?, upstreams? } }`:
   * the plugin registers a sidecar proxy's definition with the service, and `fastify.consul.upstream(name)`
   * dispatches through it. Default: off.
   */
  connect?: ConnectNative | ConnectNativeOutbound | { sidecar: ConnectSidecarOptions } | undefined
  /**
   * Reads the caller's remaining budget (`x-envoy-expected-rq-timeout-ms`) into `request.deadline`,
   * which dispatches made while handling the request inherit. A budget above `max` is clamped to it;
   * a malformed, repeated, zero or negative header is ignored. `false` ignores the header. Default { max: '5m' }.
   */
  inboundDeadline?: false | { max?: number | string | undefined } | undefined
}

export interface NormalizedOptions {
  service: ServiceOptions
  check: CheckConfig
  register: boolean
  failFast: boolean
  selfHeal: boolean
  /** ms */
  deregisterTimeout: number
  /** ms */
  drainDelay: number
  /** ms */
  retry: { base: number, cap: number }
  consul: ConsulConnectionOptions
  client: Consul | undefined
  discovery: DispatcherOptions
  meterProvider: MeterProvider | undefined
  config: ConfigSettings | undefined
  connect: ConnectNative | ConnectNativeOutbound | undefined
  /** The sidecar registered with the service (`connect: { sidecar }`), or undefined. */
  sidecar: SidecarSettings | undefined
  /** ms; false when the header is not read */
  inboundDeadline: { max: number } | false
}

export const PLUGIN_DEFAULTS = Object.freeze({
  register: true,
  failFast: false,
  selfHeal: true,
  deregisterTimeout: 2000,
  // Long enough for callers on blocking queries (ms) and a poll-based cache or two; 0 is allowed.
  drainDelay: 500,
  retry: Object.freeze({ base: 200, cap: 30_000 }),
  // A caller may ask us to hold a request this long at most: longer budgets are clamped, not trusted.
  inboundDeadlineMax: 5 * 60_000
})

/**
 * The check, knowing whether the service is Connect-native. Under mutual TLS Consul's HTTP and gRPC
 * checks cannot present a client certificate (they stay critical, even with tlsSkipVerify), so the
 * default check becomes TTL, driven by the app's own health, and an explicit HTTP or gRPC one is refused.
 */
function normalizeConnectCheck (connect: unknown, given: unknown, name: string): CheckConfig {
  // A sidecar leaves the app on plain HTTP, so every check works as without Connect.
  if (connect === undefined || isSidecarForm(connect)) return normalizeCheck(given)
  if (!(connect instanceof Object) || !(CONNECT_NATIVE in connect)) fail('connect', 'the handle of await connectNative({ service }), or { sidecar: { port?, upstreams? } }')
  const handle = connect as ConnectNative | ConnectNativeOutbound
  if (handle.service !== name) fail('connect', `a connectNative() handle for service "${name}" (this one is for "${String(handle.service)}")`)
  // Outbound only: the app serves plain HTTP, which Consul's checks reach as usual.
  if (!handle.inbound) return normalizeCheck(given)
  const check = normalizeCheck(given ?? { type: 'ttl' })
  if (check.type === 'http' || check.type === 'grpc') fail('check.type', '"ttl", "tcp" or false under connect: Consul\'s HTTP and gRPC checks cannot present a client certificate')
  return check
}

export function normalizeOptions (input: unknown): NormalizedOptions {
  if (typeof input !== 'object' || input === null) fail('options', 'an options object with at least { service: { name } }')
  // `client` and `meterProvider` are object graphs TypeBox should not walk; they are checked by shape below.
  const { client, meterProvider, connect, ...rest } = input as Record<string, unknown>
  const problem = objectFormProblem(inboundDeadlineSchema, rest.inboundDeadline, 'inboundDeadline') ?? firstProblem(compiled, rest)
  if (problem) fail(problem.field, problem.expected)
  const opts = rest as Omit<ConsulPluginOptions, 'client'>
  const service = normalizeService(opts.service)
  const check = normalizeConnectCheck(connect, opts.check, service.name)
  const discovery = validateDiscoveryOptions<DispatcherOptions>(opts.discovery, 'dispatcher', 'discovery')
  if (client !== undefined && (typeof client !== 'object' || client === null || typeof (client as { agent?: unknown }).agent !== 'object')) {
    fail('client', 'an instance of the `consul` npm client')
  }
  if (meterProvider !== undefined && typeof (meterProvider as { getMeter?: unknown } | null)?.getMeter !== 'function') {
    fail('meterProvider', 'an OpenTelemetry MeterProvider (an object with getMeter())')
  }
  const retry = { base: msOr(opts.retry?.base, PLUGIN_DEFAULTS.retry.base), cap: msOr(opts.retry?.cap, PLUGIN_DEFAULTS.retry.cap) }
  if (retry.cap < retry.base) fail('retry.cap', `at least retry.base (${retry.base} ms)`)

  return {
    service,
    check,
    register: opts.register ?? PLUGIN_DEFAULTS.register,
    failFast: opts.failFast ?? PLUGIN_DEFAULTS.failFast,
    selfHeal: opts.selfHeal ?? PLUGIN_DEFAULTS.selfHeal,
    deregisterTimeout: msOr(opts.deregisterTimeout, PLUGIN_DEFAULTS.deregisterTimeout),
    drainDelay: msOr(opts.drainDelay, PLUGIN_DEFAULTS.drainDelay),
    retry,
    consul: opts.consul ?? {},
    client: client as Consul | undefined,
    discovery,
    meterProvider: meterProvider as MeterProvider | undefined,
    config: opts.config === undefined ? undefined : normalizeConfigOptions(opts.config, service.name),
    connect: isSidecarForm(connect) ? undefined : connect as ConnectNative | ConnectNativeOutbound | undefined,
    sidecar: isSidecarForm(connect) ? normalizeSidecar(connect) : undefined,
    inboundDeadline: opts.inboundDeadline === false ? false : { max: msOr(opts.inboundDeadline?.max, PLUGIN_DEFAULTS.inboundDeadlineMax) }
  }
}
