import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'
import { firstProblem } from '../util/validate.js'
import { keyOf, type Layered, type LayerSettings } from './layering.js'

// The user's TypeBox schema applied to what KV holds, through the package's one validation dialect
// (util/validate.ts): KV strings are converted to the schema's types ("20" → 20), the schema's defaults
// fill what KV lacks, and the first problem names the KV key as written.

export type Checked =
  | { ok: true, value: Readonly<Record<string, unknown>> }
  | { ok: false, key: string, field: string, expected: string }

export class ConfigSchema {
  readonly #schema: TSchema
  readonly #check: TypeCheck<TSchema>

  constructor (schema: TSchema) {
    this.#schema = schema
    this.#check = TypeCompiler.Compile(schema)
  }

  check (layered: Layered, settings: LayerSettings): Checked {
    const value = Value.Default(this.#schema, Value.Convert(this.#schema, structuredClone(layered.values)))
    const problem = firstProblem(this.#check, value)
    if (problem !== undefined) return { ok: false, key: keyOf(problem.field, layered.sources, settings), field: problem.field, expected: problem.expected }
    return { ok: true, value: deepFreeze(value as Record<string, unknown>) }
  }
}

/** Frozen all the way down: a handler cannot change what every other request reads. */
export function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}
