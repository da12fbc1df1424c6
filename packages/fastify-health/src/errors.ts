import createError from '@fastify/error'

// Every error this package throws. Tests match on `code`; the messages are for humans and may change.

/**
 * A plugin option failed the schema: `(field, expected, received)`, the field as the user wrote it
 * (`checks["db.main"].timeout`), in @reg/fastify-consul's words (src/validate.ts). Thrown from `ready()`.
 */
export const InvalidOptionError = createError<'FST_REG_HEALTH_INVALID_OPTION', 500, [string, string, string]>(
  'FST_REG_HEALTH_INVALID_OPTION',
  'Invalid @reg/fastify-health option %s: expected %s, received %s',
  500
)

/** `fastify.health.addCheck()` got a bad argument: `(check name, field, expected, received)`. */
export const InvalidCheckError = createError<'FST_REG_HEALTH_INVALID_CHECK', 500, [string, string, string, string]>(
  'FST_REG_HEALTH_INVALID_CHECK',
  'Invalid @reg/fastify-health check %s: %s expected %s, received %s',
  500
)

/** Two checks share a name, so one would silently overwrite the other's result: `(name)`. */
export const DuplicateCheckError = createError<'FST_REG_HEALTH_DUPLICATE_CHECK', 500, [string]>(
  'FST_REG_HEALTH_DUPLICATE_CHECK',
  '@reg/fastify-health: a health check named "%s" is already registered',
  500
)

/** The plugin was registered twice in one scope; the second would fight the first over the routes. */
export const AlreadyRegisteredError = createError<'FST_REG_HEALTH_ALREADY_REGISTERED', 500, []>(
  'FST_REG_HEALTH_ALREADY_REGISTERED',
  '@reg/fastify-health is already registered in this scope (fastify.health exists); register it once',
  500
)

/**
 * @fastify/under-pressure is already registered in this scope. A second copy would throw on its own decorators,
 * and two sets of thresholds would disagree about when the instance is under pressure.
 */
export const UnderPressureConflictError = createError<'FST_REG_HEALTH_UNDER_PRESSURE_CONFLICT', 500, []>(
  'FST_REG_HEALTH_UNDER_PRESSURE_CONFLICT',
  '@reg/fastify-health registers @fastify/under-pressure itself, and it is already registered in this scope; ' +
    'remove that registration and pass its thresholds as the underPressure option instead',
  500
)
