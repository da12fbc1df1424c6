import { randomUUID } from 'node:crypto'
import type { Statement } from 'better-sqlite3'
import type { UsersDatabase } from './db.js'
import { DuplicateEmailError } from './errors.js'
import type { NewUser, User } from './schemas.js'

// The users table behind an interface of plain objects. Statements are prepared once, here, not per request.

const COLUMNS = 'id, name, email, created_at AS createdAt'

function isUniqueViolation (err: unknown): boolean {
  return (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE'
}

export class UsersRepository {
  readonly #list: Statement<[], User>
  readonly #byId: Statement<[string], User>
  readonly #insert: Statement<[User]>

  constructor (db: UsersDatabase) {
    // rowid is insertion order; ids are random UUIDs, so they cannot give the list an order.
    this.#list = db.prepare<[], User>(`SELECT ${COLUMNS} FROM users ORDER BY rowid`)
    this.#byId = db.prepare<[string], User>(`SELECT ${COLUMNS} FROM users WHERE id = ?`)
    this.#insert = db.prepare<[User]>('INSERT INTO users (id, name, email, created_at) VALUES (@id, @name, @email, @createdAt)')
  }

  list (): User[] {
    return this.#list.all()
  }

  get (id: string): User | undefined {
    // Ids are stored as randomUUID() writes them: lower case.
    return this.#byId.get(id.toLowerCase())
  }

  /** Throws {@link DuplicateEmailError} when the email is taken, whatever its case. */
  create (input: NewUser): User {
    const user: User = { id: randomUUID(), name: input.name, email: input.email, createdAt: new Date().toISOString() }
    try {
      this.#insert.run(user)
    } catch (err) {
      // The only UNIQUE column besides a random 122-bit id is email.
      if (isUniqueViolation(err)) throw new DuplicateEmailError(input.email)
      throw err
    }
    return user
  }
}
