import type { FastifyPluginAsync } from 'fastify'
import { UnavailableError, UserNotFoundError } from '../errors.js'
import { ListQuerySchema, NewUserSchema, UserListSchema, UserParamsSchema, UserSchema, type ListQuery, type NewUser, type UserParams } from '../schemas.js'
import type { UsersRepository } from '../users-repository.js'
import { typeboxValidatorCompiler } from '../validator.js'

export interface UsersRoutesOptions {
  repository: UsersRepository
  /** The page size when a client sends no `?limit=`, read per request (it may come from Consul KV and change live). */
  defaultLimit: () => number
}

/** Seconds a client should wait after a 503 before trying again: longer than a typical lock is held. */
const RETRY_AFTER_SECONDS = 1

// Not wrapped in fastify-plugin: the validator compiler and the error handler below must stay in this scope.
export const usersRoutes: FastifyPluginAsync<UsersRoutesOptions> = async function usersRoutes (fastify, { repository, defaultLimit }) {
  fastify.setValidatorCompiler(typeboxValidatorCompiler)

  fastify.setErrorHandler(function usersErrorHandler (error, request, reply) {
    // Everything else is Fastify's default handling (status from the error, 4xx logged at info).
    if (!(error instanceof UnavailableError)) throw error
    // The driver's code and message are for operators only: the client learns that it may retry, and when.
    request.log.error({ err: error.cause }, 'users database unavailable')
    reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS))
      .send({ statusCode: 503, code: error.code, error: 'Service Unavailable', message: error.message })
  })

  // A page at a time: one call can never read or send the whole table. RFC 8288's Link rel="next" says
  // where the next page is; the body stays a plain array of users.
  fastify.get<{ Querystring: ListQuery }>('/', {
    schema: { querystring: ListQuerySchema, response: { 200: UserListSchema } }
  }, async (request, reply) => {
    // A client's ?limit= always wins over the configured default.
    const limit = request.query.limit === undefined ? defaultLimit() : Number(request.query.limit)
    const { users, next } = repository.page(limit, request.query.after)
    if (next !== undefined) reply.header('link', `<${fastify.prefix}?limit=${limit}&after=${next}>; rel="next"`)
    return users
  })

  fastify.get<{ Params: UserParams }>('/:id', {
    schema: { params: UserParamsSchema, response: { 200: UserSchema } }
  }, async (request) => {
    const user = repository.get(request.params.id)
    if (user === undefined) throw new UserNotFoundError(request.params.id)
    return user
  })

  fastify.post<{ Body: NewUser }>('/', {
    // A user is two short strings; the 1 MiB default would only let clients make us parse junk.
    bodyLimit: 16 * 1024,
    schema: { body: NewUserSchema, response: { 201: UserSchema } }
  }, async (request, reply) => {
    const user = repository.create(request.body)
    reply.code(201).header('location', `${fastify.prefix}/${user.id}`)
    return user
  })
}
