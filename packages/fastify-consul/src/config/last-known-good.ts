import { randomBytes } from 'node:crypto'
import { readFile, rename, unlink, writeFile } from 'node:fs/promises'

// The last configuration that validated, on disk, for `failFast: false` boots without Consul. Written
// to a temporary file in the same directory and renamed over the old one: rename is atomic on POSIX, so
// a crash mid-write leaves the previous file, never half of a new one.

export interface KnownGood {
  /** The KV prefix it was read from: a file written for another prefix is not used. */
  prefix: string
  /** Epoch ms of the read. */
  savedAt: number
  /** The layered KV values before defaults, re-validated against the schema when read back. */
  values: Record<string, unknown>
  /** Leaf field → KV key, so an error on the file still names a key. */
  sources: Record<string, string>
}

export class KnownGoodFile {
  readonly path: string
  // Writes run one after another, so an older snapshot can never be renamed over a newer one.
  #queue: Promise<void> = Promise.resolve()

  constructor (path: string) {
    this.path = path
  }

  /** Resolves once written; rejects with the file system's error (the caller logs it and carries on). */
  write (snapshot: KnownGood): Promise<void> {
    const run = this.#queue.then(() => this.#write(snapshot))
    this.#queue = run.catch(() => {})
    return run
  }

  async #write (snapshot: KnownGood): Promise<void> {
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    try {
      await writeFile(tmp, JSON.stringify(snapshot), { mode: 0o600 })
      await rename(tmp, this.path)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  /** The snapshot, or undefined when there is none or it is unreadable, with the reason. */
  async read (prefix: string): Promise<KnownGood | string> {
    let parsed: Partial<KnownGood>
    try {
      parsed = JSON.parse(await readFile(this.path, 'utf8')) as Partial<KnownGood>
    } catch (err) {
      return `no readable last-known-good file at ${this.path} (${(err as Error & { code?: string }).code ?? 'not JSON'})`
    }
    if (typeof parsed !== 'object' || parsed === null || typeof parsed.values !== 'object' || parsed.values === null || typeof parsed.savedAt !== 'number' || typeof parsed.sources !== 'object') {
      return `the last-known-good file ${this.path} is not one this plugin wrote`
    }
    if (parsed.prefix !== prefix) return `the last-known-good file ${this.path} holds prefix "${String(parsed.prefix)}", not "${prefix}"`
    return parsed as KnownGood
  }
}
