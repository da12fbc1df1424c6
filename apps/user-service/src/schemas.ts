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

export const UserParamsSchema = Type.Object({
  id: Type.String({ pattern: UUID, description: 'a UUID' })
}, { additionalProperties: false })
export type UserParams = Static<typeof UserParamsSchema>
