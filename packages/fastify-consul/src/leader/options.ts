import { hostname } from 'node:os'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Duration, toMs } from '../consul/duration.js'
import { LeaderInvalidOptionError } from '../errors.js'
import { firstProblem } from '../util/validate.js'

// leader(key, options): the schema and the one place its defaults live. The bounds are Consul's own
// (structs.SessionTTLMin/Max, and a lock delay of at most 60 s), refused here instead of by Consul.

const Schema = Type.Object({
  ttl: Type.Optional(Duration(10_000, 86_400_000)),
  lockDelay: Type.Optional(Duration(0, 60_000)),
  value: Type.Optional(Type.String({ description: 'a string: what the key holds while we lead (who leads, for operators)' })),
  name: Type.Optional(Type.String({ minLength: 1, description: 'a non-empty session name' }))
}, { additionalProperties: false, description: 'an object { ttl?, lockDelay?, value?, name? }' })

const compiled = TypeCompiler.Compile(Schema)

export interface LeaderOptions {
  /** Session TTL, renewed at half of it: ms or a duration from 10s (Consul's minimum) to 24h. Default 15s (Go's api.Lock). */
  ttl?: number | string
  /** After the session is lost, how long Consul keeps anyone else from taking the key: 0 to 60s. Default 15s (Consul's). */
  lockDelay?: number | string
  /** The key's value while we lead, stored JSON-encoded. Default `<hostname>:<pid>`. */
  value?: string
  /** The session's name, as `consul operator`/the UI shows it. Default `leader:<key>`. */
  name?: string
}

export interface LeaderSettings {
  key: string
  /** ms */
  ttl: number
  /** ms */
  lockDelay: number
  value: string
  name: string
}

export const LEADER_DEFAULTS = Object.freeze({ ttl: 15_000, lockDelay: 15_000 })

export function normalizeLeaderOptions (key: unknown, input: unknown): LeaderSettings {
  if (typeof key !== 'string' || !/^[^/](?:.*[^/])?$/.test(key)) throw new LeaderInvalidOptionError('key', 'a KV key without a leading or trailing "/"')
  const problem = firstProblem(compiled, input ?? {})
  if (problem !== undefined) throw new LeaderInvalidOptionError(problem.field, problem.expected)
  const opts = (input ?? {}) as LeaderOptions
  return {
    key,
    ttl: opts.ttl === undefined ? LEADER_DEFAULTS.ttl : toMs(opts.ttl)!,
    lockDelay: opts.lockDelay === undefined ? LEADER_DEFAULTS.lockDelay : toMs(opts.lockDelay)!,
    value: opts.value ?? `${hostname()}:${process.pid}`,
    name: opts.name ?? `leader:${key}`
  }
}
