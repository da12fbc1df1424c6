import type { FastifyPluginAsync } from 'fastify'
import { UserNotFoundError } from '../errors.js'
import { NewUserSchema, UserListSchema, UserParamsSchema, UserSchema, type NewUser, type UserParams } from '../schemas.js'
import type { UsersRepository } from '../users-repository.js'
import { typeboxValidatorCompiler } from '../validator.js'

export interface UsersRoutesOptions {
  repository: UsersRepository
}

// Not wrapped in fastify-plugin: the validator compiler below must stay in this scope.
export const usersRoutes: FastifyPluginAsync<UsersRoutesOptions> = async function usersRoutes (fastify, { repository }) {
  fastify.setValidatorCompiler(typeboxValidatorCompiler)

  fastify.get('/', {
    schema: { response: { 200: UserListSchema } }
  }, async () => repository.list())

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
