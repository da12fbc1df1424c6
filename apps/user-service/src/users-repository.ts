import { randomUUID } from 'node:crypto'
import type { Statement } from 'better-sqlite3'
import type { UsersDatabase } from './db.js'
import { DuplicateEmailError, UnavailableError, UnknownCursorError } from './errors.js'
import type { NewUser, User } from './schemas.js'

// The users table behind an interface of plain objects. Statements are prepared once, here, not per request.

const COLUMNS = 'id, name, email, created_at AS createdAt'

/**
 * One page in creation order: a range on the INTEGER PRIMARY KEY, which is the table's own b-tree, so
 * SQLite walks from the cursor forward and stops after `limit` rows: no scan, no sort, whatever the
 * table's size. Exported for the test that checks this with EXPLAIN QUERY PLAN.
 */
export const PAGE_SQL = `SELECT ${COLUMNS} FROM users WHERE seq > ? ORDER BY seq LIMIT ?`
/** Where a cursor points: the user's seq, through the unique index on id. */
export const CURSOR_SQL = 'SELECT seq FROM users WHERE id = ?'

export interface Page {
  users: User[]
  /** The id to pass as `after` for the next page; undefined on the last page. */
  next: string | undefined
}

function isUniqueViolation (err: unknown): boolean {
  return (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE'
}

/**
 * Runs a driver call. Anything the driver throws that the caller did not expect (SQLITE_BUSY after the
 * busy timeout, a closed handle, an I/O error) becomes {@link UnavailableError}: the client gets a generic
 * 503, the driver's error stays in `cause`, for the log.
 */
function query<T> (run: () => T): T {
  try {
    return run()
  } catch (err) {
    throw new UnavailableError({ cause: err })
  }
}

export class UsersRepository {
  readonly #page: Statement<[number, number], User>
  readonly #cursor: Statement<[string], number>
  readonly #byId: Statement<[string], User>
  readonly #insert: Statement<[User]>

  constructor (db: UsersDatabase) {
    this.#page = db.prepare<[number, number], User>(PAGE_SQL)
    this.#cursor = db.prepare<[string], number>(CURSOR_SQL).pluck()
    this.#byId = db.prepare<[string], User>(`SELECT ${COLUMNS} FROM users WHERE id = ?`)
    this.#insert = db.prepare<[User]>('INSERT INTO users (id, name, email, created_at) VALUES (@id, @name, @email, @createdAt)')
  }

  /**
   * At most `limit` users created after the user `after` (from the first when undefined). Users created
   * meanwhile get a larger seq, so following `next` visits each user once. Throws
   * {@link UnknownCursorError} when `after` names no user.
   */
  page (limit: number, after?: string): Page {
    const from = after === undefined ? 0 : query(() => this.#cursor.get(after.toLowerCase()))
    if (from === undefined) throw new UnknownCursorError(String(after))
    // One row more than asked says whether a next page exists, without a count.
    const users = query(() => this.#page.all(from, limit + 1))
    if (users.length <= limit) return { users, next: undefined }
    users.pop()
    return { users, next: users[users.length - 1]!.id }
  }

  get (id: string): User | undefined {
    // Ids are stored as randomUUID() writes them: lower case.
    return query(() => this.#byId.get(id.toLowerCase()))
  }

  /** Throws {@link DuplicateEmailError} when the email is taken, whatever its case. */
  create (input: NewUser): User {
    const user: User = { id: randomUUID(), name: input.name, email: input.email, createdAt: new Date().toISOString() }
    try {
      this.#insert.run(user)
    } catch (err) {
      // The only UNIQUE column besides a random 122-bit id is email.
      if (isUniqueViolation(err)) throw new DuplicateEmailError(input.email)
      throw new UnavailableError({ cause: err })
    }
    return user
  }
}
