import { Kind, Type, TypeRegistry, type TSchema } from '@sinclair/typebox'

// The one duration grammar of this package. A duration is milliseconds as a number, or a Go-style
// string (what Consul itself parses with time.ParseDuration): "500ms", "1.5s", "10s", "2m", "1h",
// "1m30s". Inside the code every duration is a number of milliseconds; Go strings exist only at the
// edges (options in, the registration body out).

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const GRAMMAR = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$/
const PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g

/** Milliseconds, or undefined when `value` is not a duration of this grammar. */
export function toMs (value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined
  if (typeof value !== 'string' || !GRAMMAR.test(value)) return undefined
  let ms = 0
  for (const [, n, unit] of value.matchAll(PART)) ms += Number(n) * UNIT_MS[unit!]!
  return Math.round(ms)
}

/** A Go duration string for Consul; time.ParseDuration takes "1500ms", so whole seconds are the only nicety. */
export function goDuration (ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/** A duration as people write it in a message: 1500 → "1.5s", 60000 → "1m". */
export function showDuration (ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms >= 1000) return `${ms / 1000}s`
  return `${ms}ms`
}

export interface TDuration extends TSchema {
  [Kind]: 'RegDuration'
  static: number | string
  minimum: number
  maximum: number
}

TypeRegistry.Set<TDuration>('RegDuration', (schema, value) => {
  const ms = toMs(value)
  return ms !== undefined && ms >= schema.minimum && ms <= schema.maximum
})

/**
 * A duration option between `minimum` and `maximum` milliseconds. The bounds live in the schema, so the
 * same compiled check that rejects "10 s" also rejects a 10 ms TTL, with a description that says both.
 */
export function Duration (minimum: number, maximum = 2_147_483_647): TDuration {
  const range = maximum >= 2_147_483_647 ? `of at least ${showDuration(minimum)}` : `from ${showDuration(minimum)} to ${showDuration(maximum)}`
  return {
    [Kind]: 'RegDuration',
    minimum,
    maximum,
    description: `a duration ${range}: milliseconds as a number, or a string like "500ms", "1.5s", "10s", "2m"`
  } as unknown as TDuration
}

/** A backoff option `{ base?, cap? }` of durations (the plugin's `retry`, discovery's `backoff`): one schema. */
export function BackoffDurations (): TSchema {
  return Type.Object({
    base: Type.Optional(Duration(1)),
    cap: Type.Optional(Duration(1))
  }, { additionalProperties: false, description: 'an object { base?, cap? } of durations' })
}

/** A duration option in ms: the value as given (a number or a duration string), or the default when unset. */
export function msOr (value: number | string | undefined, fallback: number): number {
  return value === undefined ? fallback : toMs(value)!
}
