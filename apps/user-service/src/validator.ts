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

export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema }) => {
  const compiled = TypeCompiler.Compile(schema)
  return (data: unknown) => compiled.Check(data) ? { value: data } : { error: toFastifyErrors(compiled.Errors(data)) }
}
