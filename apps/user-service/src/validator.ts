/// <reference lib="es2024.string" />
// ^ String.prototype.isWellFormed (Node 20+), which the base tsconfig (ES2023 lib) does not declare.
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'

// Validates requests with TypeBox's compiler instead of Fastify's AJV. The AJV instance belongs to whoever
// calls Fastify() (server.ts, a test, a host app), and its default `removeAdditional: true` silently strips
// unknown body fields; a plugin cannot change that. This compiler rejects them whatever the host's AJV config.
// (@fastify/type-provider-typebox ships the same idea; this is the part we need, with messages that say
// what to send.) It never coerces or mutates: the schemas here only take strings, so none is needed.

function message (error: ValueError): string {
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'is required'
  if (error.type === ValueErrorType.ObjectAdditionalProperties) return 'is not a known field'
  const { description } = error.schema as { description?: string }
  return description === undefined ? error.message : `must be ${description}`
}

/** AJV-shaped, so Fastify's schemaErrorFormatter turns them into "body/email must be …" (FST_ERR_VALIDATION, 400). */
function toFastifyErrors (errors: Iterable<ValueError>): FastifySchemaValidationError[] {
  const byPath = new Map<string, FastifySchemaValidationError>()
  for (const error of errors) {
    // One message per field: a missing field also fails "Expected string", an empty email both length and pattern.
    if (byPath.has(error.path)) continue
    byPath.set(error.path, {
      keyword: ValueErrorType[error.type],
      instancePath: error.path,
      schemaPath: '',
      params: {},
      message: message(error)
    })
  }
  return [...byPath.values()]
}

/**
 * The first string in `data` (values and keys, at any depth) that is not well-formed Unicode, as a JSON
 * pointer. JSON lets a client send a lone surrogate ("\\ud800"): JavaScript keeps it, but SQLite stores
 * text as UTF-8, where it cannot exist, and reads back U+FFFD instead. So it is refused before anything
 * is stored, like any other invalid value, rather than answered with a body that differs from the row.
 */
function illFormedPath (data: unknown, path = ''): string | undefined {
  if (typeof data === 'string') return data.isWellFormed() ? undefined : path
  if (typeof data !== 'object' || data === null) return undefined
  for (const [key, value] of Object.entries(data)) {
    const at = `${path}/${key}`
    if (!key.isWellFormed()) return at
    const found = illFormedPath(value, at)
    if (found !== undefined) return found
  }
  return undefined
}

export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema }) => {
  const compiled = TypeCompiler.Compile(schema)
  return (data: unknown) => {
    const illFormed = illFormedPath(data)
    if (illFormed !== undefined) {
      return { error: [{ keyword: 'wellFormed', instancePath: illFormed, schemaPath: '', params: {}, message: 'must be well-formed Unicode text (no lone surrogates)' }] }
    }
    return compiled.Check(data) ? { value: data } : { error: toFastifyErrors(compiled.Errors(data)) }
  }
}
