import type { TSchema } from '@sinclair/typebox'
import type { TypeCheck } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'

// The one validation dialect of reg's plugins: compiled TypeBox schemas whose `description` says what is
// expected. A problem names the field as the user wrote it (`discovery.balancer`, `service.meta["a.b"]`,
// `checks["db.main"].timeout`) and suggests the known option an unknown one is a slip from. The two
// published plugins do not depend on each other, so each carries this file; fastify-health's
// test/validate.test.ts pins its copy byte for byte to fastify-consul's src/util/validate.ts.

export interface Problem {
  /** The field as the user wrote it, e.g. `check.interval` or `service.meta["k"]`. */
  field: string
  /** What would have been accepted. */
  expected: string
  /** What was given there: undefined when it is missing. */
  value: unknown
}

/** Appends one JSON-pointer segment to a dotted field name, in the notation a user would write. */
export function fieldOf (prefix: string, segment: string): string {
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) return prefix === '' ? segment : `${prefix}.${segment}`
  return `${prefix}[${/^[0-9]+$/.test(segment) ? segment : JSON.stringify(segment)}]`
}

function fieldFromPointer (prefix: string, pointer: string): string {
  let field = prefix
  for (const raw of pointer.split('/').slice(1)) field = fieldOf(field, raw.replace(/~1/g, '/').replace(/~0/g, '~'))
  return field === '' ? 'options' : field
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean": `nmae` is one slip from `name`. */
function distance (a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : j === 0 ? i : 0))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** The known name closest to `unknown`, when it is close enough to be a typo (or a plural/singular slip). */
export function closest (unknown: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const name of known) {
    const d = distance(unknown.toLowerCase(), name.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [name, d]
  }
  return bestDistance <= Math.max(1, Math.floor(unknown.length / 3)) ? best : undefined
}

/** "unknown option (did you mean `tags`?)", or the list of known options when nothing is close. */
export function unknownOption (name: string, known: readonly string[]): string {
  const guess = closest(name, known)
  return guess === undefined
    ? `a known option (${known.join(', ')}); "${name}" is unknown`
    : `a known option: "${name}" is unknown, did you mean \`${guess}\`?`
}

function describe (error: ValueError, prefix: string): Problem {
  const schema = error.schema as TSchema & { properties?: Record<string, unknown> }
  if (error.type === ValueErrorType.ObjectAdditionalProperties && schema.properties !== undefined) {
    // TypeBox reports the object; the offending key is the last segment of the pointer.
    const key = error.path.split('/').pop()!.replace(/~1/g, '/').replace(/~0/g, '~')
    return { field: fieldFromPointer(prefix, error.path), expected: unknownOption(key, Object.keys(schema.properties)), value: error.value }
  }
  /* c8 ignore next -- every schema node carries a description; TypeBox's message is a safety net */
  const described = schema.description ?? error.message
  const missing = error.value === undefined && error.path !== ''
  return { field: fieldFromPointer(prefix, error.path), expected: missing ? `${described} (it is required)` : described, value: error.value }
}

/** The first problem only: fix it, run again. A list of ten would mostly repeat one mistake. */
export function firstProblem (check: TypeCheck<TSchema>, value: unknown, prefix = ''): Problem | undefined {
  // The compiled check first: Errors() walks the schema dynamically, several times slower, and a valid
  // value (every live configuration change but a refused one) has nothing to report.
  if (check.Check(value)) return undefined
  const error = check.Errors(value).First()
  /* c8 ignore next -- the compiled check and Errors() agree; were TypeBox ever to disagree, the value is still refused, not let through */
  if (error === undefined) return { field: prefix === '' ? 'options' : prefix, expected: 'a value its schema accepts', value }
  return describe(error, prefix)
}

/**
 * The first problem of an option's object form, when `value` is an object (not null, not an array). For an
 * option that is `false` or an object (`hedge`, `retryThrottle`, `inboundDeadline`), TypeBox reports the
 * union as a whole ("expected false or an object"); checking the object on its own schema first names the
 * field inside it (`discovery.hedge.percentile`).
 */
export function objectFormProblem (check: TypeCheck<TSchema>, value: unknown, field: string): Problem | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? firstProblem(check, value, field) : undefined
}
