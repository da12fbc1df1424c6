import { Kind, TypeRegistry, type TSchema } from '@sinclair/typebox'

// The duration grammar of @reg/fastify-health, the same as @reg/fastify-consul's (consul/duration.ts),
// so `timeout: '2s'` means one thing in both plugins: milliseconds as a number, or a Go-style string
// ("500ms", "1.5s", "10s", "2m", "1m30s"). The two published packages do not depend on each other,
// hence one small copy each; test/options.test.ts pins the grammar. Inside the code durations are ms.

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

export interface TDuration extends TSchema {
  [Kind]: 'RegHealthDuration'
  static: number | string
  minimum: number
  maximum: number
}

TypeRegistry.Set<TDuration>('RegHealthDuration', (schema, value) => {
  const ms = toMs(value)
  return ms !== undefined && ms >= schema.minimum && ms <= schema.maximum
})

/** A duration option from `minimum` to `maximum` ms; the description is the "expected …" of its error. */
export function Duration (minimum: number, maximum: number): TDuration {
  return {
    [Kind]: 'RegHealthDuration',
    minimum,
    maximum,
    description: `a duration from ${minimum} to ${maximum} ms: milliseconds as a number, or a string like "500ms", "1.5s", "10s"`
  } as unknown as TDuration
}
