import createError from '@fastify/error'

// Every error this app throws or answers with, made with @fastify/error as Fastify's own are: each has a
// stable `code` (one prefix for the app, FST_REG_USERS_) and a `statusCode` that Fastify's error handler
// answers with. Tests match on `code`; the messages are for humans and may change.

export const UserNotFoundError = createError<'FST_REG_USERS_NOT_FOUND', 404, [string]>(
  'FST_REG_USERS_NOT_FOUND', 'no user with id "%s"', 404)

export const DuplicateEmailError = createError<'FST_REG_USERS_DUPLICATE_EMAIL', 409, [string]>(
  'FST_REG_USERS_DUPLICATE_EMAIL', 'a user with email "%s" already exists', 409)

/** `after` names no user: a typo'd cursor must not read as "no more users". */
export const UnknownCursorError = createError<'FST_REG_USERS_UNKNOWN_CURSOR', 400, [string]>(
  'FST_REG_USERS_UNKNOWN_CURSOR', 'querystring/after must be the id of an existing user, got "%s"', 400)

/**
 * The database failed in a way the client cannot fix (locked, closed, I/O error). The message is generic
 * on purpose: the driver's code and message go to the log through `cause`, never to the client.
 */
export const UnavailableError = createError<'FST_REG_USERS_UNAVAILABLE', 503, [{ cause: unknown }]>(
  'FST_REG_USERS_UNAVAILABLE', 'the users database is unavailable; try again shortly', 503)

/** The environment cannot start the server: one message naming every bad variable. */
export const ConfigError = createError<'FST_REG_USERS_CONFIG', 500, [string]>(
  'FST_REG_USERS_CONFIG', 'invalid environment: %s', 500)
