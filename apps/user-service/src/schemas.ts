import { Type, type Static } from '@sinclair/typebox'

// The users API's shapes, shared by the routes (validation, serialisation) and the repository (types).
// Each `description` completes "must be …" in a 400's message, so clients read what to send.

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

export const NewUserSchema = Type.Object({
  // A pattern rather than minLength alone: a name of spaces is as empty as "".
  name: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', description: 'a non-empty string of at most 200 characters' }),
  // Deliberately loose (something@domain.tld): the only real test of an address is mail to it.
  email: Type.String({ maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$', description: 'an email address such as ada@example.com' })
}, { additionalProperties: false, description: 'a JSON object { name, email }' })
export type NewUser = Static<typeof NewUserSchema>

export const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  email: Type.String(),
  createdAt: Type.String({ format: 'date-time' })
})
export type User = Static<typeof UserSchema>

export const UserListSchema = Type.Array(UserSchema)

/** Page sizes a client may ask for: enough to be useful, few enough that one list call stays cheap. */
export const PAGE_LIMIT = Object.freeze({ min: 1, max: 100, default: 50 })

// Query values are strings (the validator never coerces), so the bounds are in the pattern: 1 to 100,
// without leading zeros or signs.
export const ListQuerySchema = Type.Object({
  limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: `an integer from ${PAGE_LIMIT.min} to ${PAGE_LIMIT.max}` })),
  after: Type.Optional(Type.String({ pattern: UUID, description: 'the id of a user (from a Link: rel="next" header)' }))
}, { additionalProperties: false })
export type ListQuery = Static<typeof ListQuerySchema>

export const UserParamsSchema = Type.Object({
  id: Type.String({ pattern: UUID, description: 'a UUID' })
}, { additionalProperties: false })
export type UserParams = Static<typeof UserParamsSchema>
