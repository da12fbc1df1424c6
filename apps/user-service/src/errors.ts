// Every error this app throws. Tests match on `code`; the messages are for humans and may change.
// Shaped like @fastify/error's errors (code, statusCode), so Fastify's error handler answers with both;
// @fastify/error itself is not a dependency of this app.

export class UserNotFoundError extends Error {
  readonly code = 'FST_REG_USERS_NOT_FOUND'
  readonly statusCode = 404

  constructor (id: string) {
    super(`no user with id "${id}"`)
    this.name = 'UserNotFoundError'
  }
}

export class DuplicateEmailError extends Error {
  readonly code = 'FST_REG_USERS_DUPLICATE_EMAIL'
  readonly statusCode = 409

  constructor (email: string) {
    super(`a user with email "${email}" already exists`)
    this.name = 'DuplicateEmailError'
  }
}

/** The environment cannot start the server: one message naming every bad variable. */
export class ConfigError extends Error {
  readonly code = 'FST_REG_USER_SERVICE_CONFIG'

  constructor (problems: readonly string[]) {
    super(`invalid environment: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}
