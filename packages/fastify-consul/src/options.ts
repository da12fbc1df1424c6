import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type Consul from 'consul'
import type { ConsulConnectionOptions } from './connection.js'
import type { DispatcherOptions } from './discovery.js'
import { InvalidOptionError } from './errors.js'

// The schema is the single source of truth for what is valid; each node's `description` is the
// "expected …" half of FST_REG_CONSUL_INVALID_OPTION, so users read what to send, not an AJV path.

const Duration = Type.Union([
  Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$' }),
  Type.Integer({ minimum: 1 })
], { description: 'a duration: milliseconds as a positive integer, or a string like "500ms", "10s", "1m"' })

// Consul's own limits (agent/structs: metaKeyFormat, metaKeyMaxLength, metaValueMaxLength, metaMaxKeyPairs).
const META_KEY = /^(?!consul-)[A-Za-z0-9_-]{1,128}$/
const Meta = Type.Record(Type.String(), Type.String({ maxLength: 512, description: 'a string of at most 512 bytes' }), {
  maxProperties: 64,
  description: 'at most 64 pairs; keys of 1–128 characters [A-Za-z0-9_-] not starting with "consul-"; string values of at most 512 bytes'
})

const Weights = Type.Object({
  passing: Type.Integer({ minimum: 1, maximum: 65535, description: 'an integer from 1 to 65535' }),
  warning: Type.Integer({ minimum: 0, maximum: 65535, description: 'an integer from 0 to 65535' })
}, { additionalProperties: false, description: '{ passing: 1..65535, warning: 0..65535 }' })

const Port = Type.Integer({ minimum: 1, maximum: 65535, description: 'an integer port from 1 to 65535' })

const Service = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'a non-empty service name of [A-Za-z0-9_.-] (a DNS-friendly name)' }),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9_.:-]+$', description: 'a non-empty id of [A-Za-z0-9_.:-]' })),
  address: Type.Optional(Type.String({ minLength: 1, description: 'a concrete host or IP the callers can reach (not 0.0.0.0 or ::)' })),
  port: Type.Optional(Port),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, description: 'a non-empty string' }), { maxItems: 256, description: 'an array of non-empty strings' })),
  meta: Type.Optional(Meta),
  weights: Type.Optional(Weights),
  enableTagOverride: Type.Optional(Type.Boolean({ description: 'a boolean' }))
}, { additionalProperties: false, description: 'an object { name, id?, address?, port?, tags?, meta?, weights?, enableTagOverride? }' })

const Common = {
  deregisterCriticalServiceAfter: Type.Optional(Duration)
}

const HttpCheck = Type.Object({
  type: Type.Literal('http'),
  path: Type.Optional(Type.String({ pattern: '^/', description: 'a path starting with "/"' })),
  interval: Type.Optional(Duration),
  timeout: Type.Optional(Duration),
  tlsSkipVerify: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  successBeforePassing: Type.Optional(Type.Integer({ minimum: 0, description: 'a non-negative integer' })),
  failuresBeforeCritical: Type.Optional(Type.Integer({ minimum: 0, description: 'a non-negative integer' })),
  ...Common
}, { additionalProperties: false })

const TcpCheck = Type.Object({
  type: Type.Literal('tcp'),
  interval: Type.Optional(Duration),
  timeout: Type.Optional(Duration),
  ...Common
}, { additionalProperties: false })

const TtlCheck = Type.Object({
  type: Type.Literal('ttl'),
  ttl: Type.Optional(Duration),
  ...Common
}, { additionalProperties: false })

const Check = Type.Union([Type.Literal(false), HttpCheck, TcpCheck, TtlCheck], {
  description: 'false, or { type: "http" | "tcp" | "ttl", … } with only that type\'s fields'
})

const Retry = Type.Object({
  base: Type.Optional(Type.Integer({ minimum: 1, description: 'a positive integer of milliseconds' })),
  cap: Type.Optional(Type.Integer({ minimum: 1, description: 'a positive integer of milliseconds' }))
}, { additionalProperties: false, description: 'an object { base?, cap? } of milliseconds' })

const Connection = Type.Object({
  address: Type.Optional(Type.String({ minLength: 1, description: 'host:port or an http(s) URL' })),
  token: Type.Optional(Type.String({ description: 'a string' })),
  tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'a file path' })),
  secure: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM text' })),
  rejectUnauthorized: Type.Optional(Type.Boolean({ description: 'a boolean' }))
}, { additionalProperties: false, description: 'an object { address?, token?, tokenFile?, secure?, ca?, rejectUnauthorized? }' })

const Schema = Type.Object({
  service: Service,
  check: Type.Optional(Check),
  register: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  failFast: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  selfHeal: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  deregisterTimeout: Type.Optional(Type.Integer({ minimum: 1, description: 'a positive integer of milliseconds' })),
  drainDelay: Type.Optional(Type.Integer({ minimum: 0, description: 'a non-negative integer of milliseconds' })),
  retry: Type.Optional(Retry),
  consul: Type.Optional(Connection),
  client: Type.Optional(Type.Unknown()),
  // Checked by Discovery itself, which owns those options and their FST_REG_DISCOVERY_* errors.
  discovery: Type.Optional(Type.Unknown())
}, { additionalProperties: false, description: 'an options object with at least { service: { name } }' })

const compiled = TypeCompiler.Compile(Schema)

type Raw = Static<typeof Schema>
export type HttpCheckOptions = Static<typeof HttpCheck>
export type TcpCheckOptions = Static<typeof TcpCheck>
export type TtlCheckOptions = Static<typeof TtlCheck>
export type ServiceOptions = Static<typeof Service>

export interface ConsulPluginOptions {
  /** What to register. Only `name` is required. */
  service: ServiceOptions
  /** The check Consul runs (http, tcp) or expects (ttl); `false` for none. Default `{ type: 'http' }`. */
  check?: false | HttpCheckOptions | TcpCheckOptions | TtlCheckOptions
  /** Register on listen. `false` leaves it to `fastify.consul.register()`. Default true. */
  register?: boolean
  /** Make `ready()`/`listen()` reject when the agent is unreachable or the token unknown. Default false. */
  failFast?: boolean
  /** Re-register when the agent forgets us (restart, wiped data). Default true. */
  selfHeal?: boolean
  /** Longest time deregistration may hold up shutdown, in ms. Default 2000. */
  deregisterTimeout?: number
  /** Extra wait in shutdown() after leaving Consul's healthy view, for callers' caches, in ms. Default 500. */
  drainDelay?: number
  /** Backoff for registration retries, in ms: full jitter in [0, min(cap, base·2^n)). Default { base: 200, cap: 30000 }. */
  retry?: { base?: number, cap?: number }
  /** How to reach the agent; every field falls back to Consul's CLI environment variables. */
  consul?: ConsulConnectionOptions
  /** A `consul` client to expose as `fastify.consul.client`; it is never closed by the plugin. */
  client?: Consul
  /** Defaults under every discover()/dispatcher() call's own options. */
  discovery?: DispatcherOptions
}

export type CheckConfig =
  | { type: 'http', path: string | undefined, interval: number, timeout: number, deregisterCriticalServiceAfter: number, tlsSkipVerify: boolean | undefined, successBeforePassing: number | undefined, failuresBeforeCritical: number | undefined }
  | { type: 'tcp', interval: number, timeout: number, deregisterCriticalServiceAfter: number }
  | { type: 'ttl', ttl: number, deregisterCriticalServiceAfter: number }
  | { type: 'none' }

export interface NormalizedOptions {
  service: ServiceOptions
  check: CheckConfig
  register: boolean
  failFast: boolean
  selfHeal: boolean
  deregisterTimeout: number
  drainDelay: number
  retry: { base: number, cap: number }
  consul: ConsulConnectionOptions
  client: Consul | undefined
  discovery: DispatcherOptions | undefined
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export function toMs (value: string | number): number {
  if (typeof value === 'number') return value
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value)!
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!)
}

/** A Go duration string; Consul parses it with time.ParseDuration, which takes "1500ms". */
export function goDuration (ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/** `/service/meta/foo.bar` → `service.meta["foo.bar"]`: the field as a user would write it. */
function fieldName (path: string): string {
  let out = 'options'
  for (const raw of path.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    out += /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part) ? `.${part}` : /^[0-9]+$/.test(part) ? `[${part}]` : `[${JSON.stringify(part)}]`
  }
  return out.replace(/^options\./, '')
}

function fail (field: string, expected: string): never {
  throw new InvalidOptionError(field, expected)
}

export function normalizeOptions (input: unknown): NormalizedOptions {
  if (typeof input !== 'object' || input === null) fail('options', 'an options object with at least { service: { name } }')
  // `client` is an object graph TypeBox should not walk; it is checked by shape below.
  const { client, ...rest } = input as Record<string, unknown>
  const error = compiled.Errors(rest).First()
  if (error) {
    // Unions report on themselves; their description says what each branch takes.
    /* c8 ignore next -- every schema node carries a description; error.message is a safety net */
    const described = (error.schema as TSchema).description ?? error.message
    const missing = error.value === undefined && error.path !== ''
    fail(fieldName(error.path), missing ? `${described} (it is required)` : described)
  }
  const opts = rest as Raw
  for (const [key, value] of Object.entries(opts.service.meta ?? {})) {
    // TypeBox records ignore a key pattern, so keys are checked here, against the same rule.
    if (!META_KEY.test(key)) fail(`service.meta[${JSON.stringify(key)}]`, 'a key of 1–128 characters [A-Za-z0-9_-] not starting with "consul-"')
    // maxLength counts UTF-16 units; Consul counts bytes.
    if (Buffer.byteLength(value) > 512) fail(`service.meta[${JSON.stringify(key)}]`, 'a string of at most 512 bytes')
  }
  const address = opts.service.address
  if (address !== undefined && /^(0\.0\.0\.0|::|\[::\])$/.test(address)) {
    fail('service.address', 'a concrete host or IP the callers can reach (not 0.0.0.0 or ::)')
  }
  if (client !== undefined && (typeof client !== 'object' || client === null || typeof (client as { agent?: unknown }).agent !== 'object')) {
    fail('client', 'an instance of the `consul` npm client')
  }
  const retry = { base: opts.retry?.base ?? 200, cap: opts.retry?.cap ?? 30_000 }
  if (retry.cap < retry.base) fail('retry.cap', `at least retry.base (${retry.base})`)

  return {
    service: opts.service,
    check: normalizeCheck(opts.check),
    register: opts.register ?? true,
    failFast: opts.failFast ?? false,
    selfHeal: opts.selfHeal ?? true,
    deregisterTimeout: opts.deregisterTimeout ?? 2000,
    // Long enough for callers on blocking queries (ms) and a poll-based cache or two; 0 is allowed.
    drainDelay: opts.drainDelay ?? 500,
    retry,
    consul: opts.consul ?? {},
    client: client as Consul | undefined,
    discovery: opts.discovery as DispatcherOptions | undefined
  }
}

// Consul clamps DeregisterCriticalServiceAfter to one minute without saying so; we default to that
// floor instead of the guide's 30 s, so what we send is what Consul does.
const DEREGISTER_AFTER = 60_000

function normalizeCheck (check: Raw['check']): CheckConfig {
  if (check === false) return { type: 'none' }
  const c = check ?? { type: 'http' as const }
  const deregisterCriticalServiceAfter = c.deregisterCriticalServiceAfter === undefined ? DEREGISTER_AFTER : toMs(c.deregisterCriticalServiceAfter)
  if (c.type === 'ttl') {
    return { type: 'ttl', ttl: c.ttl === undefined ? 10_000 : toMs(c.ttl), deregisterCriticalServiceAfter }
  }
  const interval = c.interval === undefined ? 10_000 : toMs(c.interval)
  const timeout = c.timeout === undefined ? 5_000 : toMs(c.timeout)
  if (c.type === 'tcp') return { type: 'tcp', interval, timeout, deregisterCriticalServiceAfter }
  return {
    type: 'http',
    path: c.path,
    interval,
    timeout,
    deregisterCriticalServiceAfter,
    tlsSkipVerify: c.tlsSkipVerify,
    successBeforePassing: c.successBeforePassing,
    failuresBeforeCritical: c.failuresBeforeCritical
  }
}
