import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { BackoffDurations, Duration } from '../consul/duration.js'
import { BALANCERS } from './lb/balancer.js'

// The schemas of discovery's options, compiled once per process: what discover(), dispatcher() and the
// plugin's `discovery` option accept. options.ts validates with them and turns what passed into settings.
// Each `description` is the "expected …" of its error message.

/** Consul caps a blocking query's wait at 10 minutes. */
const MAX_WAIT = 10 * 60_000
const NonEmpty = (what: string): TSchema => Type.String({ minLength: 1, description: `a non-empty ${what}` })
const Bool = Type.Boolean({ description: 'a boolean' })
const Random = Type.Function([], Type.Number(), { description: 'a function returning a number in [0, 1)' })

const LocalityObject = Type.Object({
  zone: Type.Optional(NonEmpty('zone name')),
  key: Type.Optional(NonEmpty('meta key'))
}, { additionalProperties: false, description: 'an object { zone?, key? }' })
// Checked on its own when an object is given, as `hedge` is, so the message names `locality.zone`.
export const localityObjectSchema = TypeCompiler.Compile(LocalityObject)

/** The watch's fields: a dispatcher given a watch must not restate them. */
export const queryFields = {
  tag: Type.Optional(NonEmpty('tag')),
  dc: Type.Optional(NonEmpty('datacenter name')),
  failover: Type.Optional(Type.Object({
    datacenters: Type.Optional(Type.Array(NonEmpty('datacenter name'), { uniqueItems: true, description: 'an array of distinct datacenter names' })),
    nearest: Type.Optional(Type.Integer({ minimum: 0, maximum: 64, description: 'an integer from 0 to 64' }))
  }, { additionalProperties: false, description: 'an object { datacenters?, nearest? }' })),
  locality: Type.Optional(Type.Union([Bool, LocalityObject], { description: 'a boolean or an object { zone?, key? }' })),
  passingOnly: Type.Optional(Bool),
  panicThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'a share from 0 to 1' })),
  filter: Type.Optional(NonEmpty('bexpr expression')),
  stale: Type.Optional(Bool),
  cached: Type.Optional(Bool),
  wait: Type.Optional(Duration(1000, MAX_WAIT)),
  staleTtl: Type.Optional(Duration(0)),
  readyTimeout: Type.Optional(Duration(1)),
  backoff: Type.Optional(BackoffDurations()),
  rateLimit: Type.Optional(Type.Object({
    perSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'a number > 0' })),
    burst: Type.Optional(Type.Number({ minimum: 1, description: 'a number >= 1' }))
  }, { additionalProperties: false, description: 'an object { perSecond?, burst? }' }))
}

const RetryThrottleObject = Type.Object({
  maxTokens: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000, description: 'an integer from 2 to 1000' })),
  tokenRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'a number > 0 and <= 1' }))
}, { additionalProperties: false, description: 'an object { maxTokens?, tokenRatio? }' })
export const retryThrottleSchema = TypeCompiler.Compile(RetryThrottleObject)

const HedgeObject = Type.Object({
  delay: Type.Optional(Duration(1)),
  percentile: Type.Optional(Type.Number({ minimum: 0.5, maximum: 0.999, description: 'a number from 0.5 to 0.999' })),
  minDelay: Type.Optional(Duration(1)),
  maxDelay: Type.Optional(Duration(1))
}, { additionalProperties: false, description: 'an object { delay?, percentile?, minDelay?, maxDelay? }' })
// TypeBox reports a union as a whole; an object given for `hedge` is checked on its own, so the
// message names the field inside it (`hedge.percentile`), as for every other nested option.
export const hedgeObjectSchema = TypeCompiler.Compile(HedgeObject)

const dispatchFields = {
  balancer: Type.Optional(Type.Union(BALANCERS.map((b) => Type.Literal(b)), { description: `one of ${BALANCERS.map((b) => `"${b}"`).join(', ')}` })),
  random: Type.Optional(Random),
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, description: 'an integer from 0 to 10' })),
  retryBudget: Type.Optional(Type.Object({
    ratio: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'a number from 0 to 1' })),
    minPerSecond: Type.Optional(Type.Number({ minimum: 0, description: 'a number >= 0' })),
    burst: Type.Optional(Type.Number({ minimum: 1, description: 'a number >= 1' }))
  }, { additionalProperties: false, description: 'an object { ratio?, minPerSecond?, burst? }' })),
  retryThrottle: Type.Optional(Type.Union([Type.Literal(false), RetryThrottleObject], { description: 'false or an object { maxTokens?, tokenRatio? }' })),
  ejectionMs: Type.Optional(Duration(0)),
  maxEjectionMs: Type.Optional(Duration(0)),
  consecutiveFailures: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'an integer from 1 to 1000' })),
  maxEjectionPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'a number from 0 to 100' })),
  retryOn: Type.Optional(Type.Array(Type.Integer({ minimum: 400, maximum: 599, description: 'an HTTP status from 400 to 599' }), { uniqueItems: true, description: 'an array of distinct HTTP statuses from 400 to 599' })),
  perTryTimeout: Type.Optional(Duration(0)),
  slowStartMs: Type.Optional(Duration(0)),
  hedge: Type.Optional(Type.Union([Bool, HedgeObject], { description: 'a boolean or an object { delay?, percentile?, minDelay?, maxDelay? }' })),
  deadline: Type.Optional(Duration(0)),
  pool: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'undici Pool options (an object)' }))
}

const discoverSchema = TypeCompiler.Compile(Type.Object({ ...queryFields, balancer: dispatchFields.balancer, random: dispatchFields.random }, { additionalProperties: false, description: 'an options object' }))
const dispatcherSchema = TypeCompiler.Compile(Type.Object({ ...queryFields, ...dispatchFields }, { additionalProperties: false, description: 'an options object' }))
const dispatchOnlySchema = TypeCompiler.Compile(Type.Object(dispatchFields, { additionalProperties: false, description: 'an options object' }))

export type OptionsKind = 'discover' | 'dispatcher' | 'dispatch'
export const SCHEMAS: Record<OptionsKind, TypeCheck<TSchema>> = { discover: discoverSchema, dispatcher: dispatcherSchema, dispatch: dispatchOnlySchema }
