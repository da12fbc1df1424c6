import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { Duration, toMs } from '../consul/duration.js'
import { InvalidOptionError } from '../errors.js'
import type { Unset } from '../util/unset.js'
import { firstProblem, unknownOption } from '../util/validate.js'

// What may be registered, and the one place its defaults live. The schemas are Consul's own limits
// (agent/structs: metaKeyFormat, metaKeyMaxLength, metaValueMaxLength, metaMaxKeyPairs, Weights).

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

export const ServiceSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'a non-empty service name of [A-Za-z0-9_.-] (a DNS-friendly name)' }),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9_.:-]+$', description: 'a non-empty id of [A-Za-z0-9_.:-]' })),
  address: Type.Optional(Type.String({ minLength: 1, description: 'a concrete host or IP the callers can reach (not 0.0.0.0 or ::)' })),
  port: Type.Optional(Port),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, description: 'a non-empty string' }), { maxItems: 256, description: 'an array of non-empty strings' })),
  meta: Type.Optional(Meta),
  weights: Type.Optional(Weights),
  enableTagOverride: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  zone: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'a non-empty zone name, e.g. "eu-west-1a"' }))
}, { additionalProperties: false, description: 'an object { name, id?, address?, port?, tags?, meta?, weights?, enableTagOverride?, zone? }' })

export type ServiceOptions = Unset<Static<typeof ServiceSchema>>

// Consul clamps DeregisterCriticalServiceAfter to one minute and check intervals to one second without
// saying so; smaller values are refused here instead, so what we send is what Consul does.
const common = {
  type: Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('tcp'), Type.Literal('grpc'), Type.Literal('ttl')], { description: 'one of "http", "tcp", "grpc", "ttl"' })),
  deregisterCriticalServiceAfter: Type.Optional(Duration(60_000))
}
// Checks Consul runs itself. The two thresholds (Consul >= 1.7; in the HTTP API from 1.8.1) damp flapping:
// the status changes only after that many results in a row.
const probe = {
  interval: Type.Optional(Duration(1000)),
  timeout: Type.Optional(Duration(100)),
  successBeforePassing: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'an integer from 0 to 100' })),
  failuresBeforeCritical: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'an integer from 0 to 100' }))
}
const tlsSkipVerify = Type.Optional(Type.Boolean({ description: 'a boolean' }))

// RFC 9110 token characters; a header value must not smuggle a line break into Consul's request.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HEADER_VALUE = /^[^\r\n]*$/
const HeaderValue = Type.String({ pattern: HEADER_VALUE.source, description: 'a header value without line breaks' })

const CHECK_SCHEMAS = {
  http: Type.Object({
    ...common,
    ...probe,
    path: Type.Optional(Type.String({ pattern: '^/', description: 'a path starting with "/"' })),
    method: Type.Optional(Type.String({ pattern: '^[A-Z]+$', maxLength: 32, description: 'an upper-case HTTP method, e.g. "GET" or "HEAD"' })),
    header: Type.Optional(Type.Record(Type.String(), Type.Union([HeaderValue, Type.Array(HeaderValue, { minItems: 1 })]), {
      maxProperties: 64,
      description: 'an object of header names to a value or an array of values'
    })),
    tlsSkipVerify
  }, { additionalProperties: false }),
  tcp: Type.Object({ ...common, ...probe }, { additionalProperties: false }),
  // gRPC health checking protocol (grpc.health.v1.Health/Check) against address:port, or another port.
  grpc: Type.Object({
    ...common,
    ...probe,
    port: Type.Optional(Port),
    grpcService: Type.Optional(Type.String({ minLength: 1, pattern: '^[^/\\s]+$', description: 'a gRPC service name without "/" or spaces, e.g. "users.v1.Users"' })),
    grpcUseTls: Type.Optional(Type.Boolean({ description: 'a boolean' })),
    tlsSkipVerify
  }, { additionalProperties: false }),
  // Below a second the beat (ttl / 2) would hammer the agent; a TTL of "10" is a typo for "10s".
  ttl: Type.Object({ ...common, ttl: Type.Optional(Duration(1000)) }, { additionalProperties: false })
} satisfies Record<string, TSchema>

type CheckType = keyof typeof CHECK_SCHEMAS
const CHECK_TYPES = Object.keys(CHECK_SCHEMAS) as CheckType[]
const compiledChecks: Record<CheckType, TypeCheck<TSchema>> = {
  http: TypeCompiler.Compile(CHECK_SCHEMAS.http),
  tcp: TypeCompiler.Compile(CHECK_SCHEMAS.tcp),
  grpc: TypeCompiler.Compile(CHECK_SCHEMAS.grpc),
  ttl: TypeCompiler.Compile(CHECK_SCHEMAS.ttl)
}

/** Consul probes `GET http://address:port/<path>`; the default check type. */
export type HttpCheckOptions = Unset<Omit<Static<typeof CHECK_SCHEMAS.http>, 'type'>> & { type?: 'http' | undefined }
/** Consul opens a TCP connection to address:port. */
export type TcpCheckOptions = Unset<Omit<Static<typeof CHECK_SCHEMAS.tcp>, 'type'>> & { type: 'tcp' }
/** Consul calls grpc.health.v1.Health/Check on address:port (or `port`), for `grpcService` if set. */
export type GrpcCheckOptions = Unset<Omit<Static<typeof CHECK_SCHEMAS.grpc>, 'type'>> & { type: 'grpc' }
/** The plugin reports health to Consul; Consul marks it critical when no report came within `ttl`. */
export type TtlCheckOptions = Unset<Omit<Static<typeof CHECK_SCHEMAS.ttl>, 'type'>> & { type: 'ttl' }
export type CheckOptions = HttpCheckOptions | TcpCheckOptions | GrpcCheckOptions | TtlCheckOptions

/** What every check Consul runs itself carries; the thresholds are sent only when set. */
export interface ProbeConfig {
  interval: number
  timeout: number
  deregisterCriticalServiceAfter: number
  successBeforePassing: number | undefined
  failuresBeforeCritical: number | undefined
}

export type CheckConfig =
  | ({ type: 'http', path: string | undefined, method: string | undefined, header: Record<string, string[]> | undefined, tlsSkipVerify: boolean | undefined } & ProbeConfig)
  | ({ type: 'tcp' } & ProbeConfig)
  | ({ type: 'grpc', port: number | undefined, grpcService: string | undefined, grpcUseTls: boolean | undefined, tlsSkipVerify: boolean | undefined } & ProbeConfig)
  | { type: 'ttl', ttl: number, deregisterCriticalServiceAfter: number }
  | { type: 'none' }

/** Every registration default, in ms where it is a duration. */
export const REGISTRATION_DEFAULTS = Object.freeze({
  interval: 10_000,
  timeout: 5_000,
  ttl: 10_000,
  deregisterCriticalServiceAfter: 60_000,
  // An overloaded (warning) instance keeps a tenth of a healthy one's share: less load, never zero.
  weights: Object.freeze({ passing: 10, warning: 1 })
})

/** Throws FST_REG_CONSUL_INVALID_OPTION naming `field` as the user wrote it (the plugin's options use it too). */
export function fail (field: string, expected: string): never {
  throw new InvalidOptionError(field, expected)
}

const compiledService = TypeCompiler.Compile(ServiceSchema)

/** Validates `service` (Consul's limits, checked here so the user reads them before Consul says 400). */
export function normalizeService (input: unknown): ServiceOptions {
  const problem = firstProblem(compiledService, input, 'service')
  if (problem) fail(problem.field, input === undefined ? `${problem.expected} (it is required)` : problem.expected)
  const given = input as ServiceOptions
  // The zone is registered as meta `zone`, where locality-aware callers look for it; REG_ZONE sets it
  // for a deployment without a code change (as CONSUL_HTTP_ADDR does for the agent).
  const envZone = process.env.REG_ZONE
  const zone = given.zone ?? (envZone !== undefined && envZone !== '' ? envZone : undefined)
  if (zone !== undefined && given.meta?.zone !== undefined && given.meta.zone !== zone) {
    fail(given.zone !== undefined ? 'service.zone' : 'service.meta.zone', `one zone: service.zone (or REG_ZONE) is "${zone}" and service.meta.zone is "${given.meta.zone}"`)
  }
  const service: ServiceOptions = zone === undefined ? given : { ...given, zone }
  for (const [key, value] of Object.entries(service.meta ?? {})) {
    // TypeBox records ignore a key pattern, so keys are checked here, against the same rule.
    if (!META_KEY.test(key)) fail(`service.meta[${JSON.stringify(key)}]`, 'a key of 1–128 characters [A-Za-z0-9_-] not starting with "consul-"')
    // maxLength counts UTF-16 units; Consul counts bytes.
    if (Buffer.byteLength(value) > 512) fail(`service.meta[${JSON.stringify(key)}]`, 'a string of at most 512 bytes')
  }
  if (service.address !== undefined && /^(0\.0\.0\.0|::|\[::\])$/.test(service.address)) {
    fail('service.address', 'a concrete host or IP the callers can reach (not 0.0.0.0 or ::)')
  }
  return service
}

/**
 * `check`: false, or an object whose `type` (default "http") picks the schema. Validating against that
 * one schema, not a union, is what lets each mistake name its own field and rule.
 */
export function normalizeCheck (input: unknown): CheckConfig {
  if (input === false) return { type: 'none' }
  const raw = input ?? {}
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('check', 'false, or an object { type?: "http" | "tcp" | "grpc" | "ttl", … }')
  const type = (raw as { type?: unknown }).type ?? 'http'
  if (!CHECK_TYPES.includes(type as CheckType)) fail('check.type', 'one of "http", "tcp", "grpc", "ttl" (default "http")')
  const checkType = type as CheckType
  for (const key of Object.keys(raw)) {
    if (key in CHECK_SCHEMAS[checkType].properties) continue
    const owner = CHECK_TYPES.filter((t) => key in CHECK_SCHEMAS[t].properties).join(', ') || undefined
    fail(`check.${key}`, owner === undefined
      ? unknownOption(key, Object.keys(CHECK_SCHEMAS[checkType].properties))
      : `an option of a ${checkType} check ("${key}" belongs to ${owner} checks)`)
  }
  const problem = firstProblem(compiledChecks[checkType], raw, 'check')
  if (problem) fail(problem.field, problem.expected)

  const c = raw as { [k: string]: unknown }
  const ms = (key: 'interval' | 'timeout' | 'ttl' | 'deregisterCriticalServiceAfter'): number => c[key] === undefined ? REGISTRATION_DEFAULTS[key] : toMs(c[key])!
  const deregisterCriticalServiceAfter = ms('deregisterCriticalServiceAfter')
  if (checkType === 'ttl') return { type: 'ttl', ttl: ms('ttl'), deregisterCriticalServiceAfter }
  const probe: ProbeConfig = {
    interval: ms('interval'),
    timeout: ms('timeout'),
    deregisterCriticalServiceAfter,
    successBeforePassing: c.successBeforePassing as number | undefined,
    failuresBeforeCritical: c.failuresBeforeCritical as number | undefined
  }
  if (checkType === 'tcp') return { type: 'tcp', ...probe }
  if (checkType === 'grpc') {
    const grpc = c as GrpcCheckOptions
    return { type: 'grpc', ...probe, port: grpc.port, grpcService: grpc.grpcService, grpcUseTls: grpc.grpcUseTls, tlsSkipVerify: grpc.tlsSkipVerify }
  }
  const http = c as HttpCheckOptions
  return { type: 'http', ...probe, path: http.path, method: http.method, header: headers(http.header), tlsSkipVerify: http.tlsSkipVerify }
}

/** Consul's shape, `{ name: [values] }`; a name Consul would send broken is refused here. */
function headers (input: Record<string, string | string[]> | undefined): Record<string, string[]> | undefined {
  if (input === undefined) return undefined
  const out: Record<string, string[]> = {}
  for (const [name, value] of Object.entries(input)) {
    // TypeBox records ignore a key pattern, so names are checked here.
    if (!HEADER_NAME.test(name)) fail(`check.header[${JSON.stringify(name)}]`, 'a header name of token characters (RFC 9110), e.g. "Authorization"')
    out[name] = Array.isArray(value) ? [...value] : [value]
  }
  return out
}
