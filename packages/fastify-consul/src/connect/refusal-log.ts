// "Log once per caller, not once per request": a refusal is logged the first time for its key, again only
// after `window` ms (or after forget(), when the caller was allowed in between), and the memory of keys is
// bounded, because the keys come from peers (addresses, URIs) and a peer can make up as many as it likes.

/** A peer refused for the same reason is named again after a minute: often enough to see it persists. */
export const REFUSAL_LOG_WINDOW = 60_000

export interface RefusalLogOptions {
  /** ms before the same key is logged again; Infinity: until forget(). */
  window: number
  /** Keys remembered at most; the oldest is forgotten first. Default 1024. */
  max?: number
  now?: () => number
}

export class RefusalLog {
  readonly #window: number
  readonly #max: number
  readonly #now: () => number
  readonly #seen = new Map<string, number>()

  constructor (opts: RefusalLogOptions) {
    this.#window = opts.window
    this.#max = opts.max ?? 1024
    this.#now = opts.now ?? (() => performance.now())
  }

  /** Runs `log` unless `key` was logged within the window. Returns whether it ran. */
  once (key: string, log: () => void): boolean {
    const now = this.#now()
    const at = this.#seen.get(key)
    if (at !== undefined && now - at < this.#window) return false
    // Re-inserting moves the key to the newest end, so eviction below drops the longest-quiet key.
    this.#seen.delete(key)
    this.#seen.set(key, now)
    if (this.#seen.size > this.#max) this.#seen.delete(this.#seen.keys().next().value!)
    log()
    return true
  }

  /** The caller was allowed: its next refusal is news again. */
  forget (key: string): void {
    this.#seen.delete(key)
  }
}

/** Who a refusal is about. Node forgets the address of a socket it destroyed before anyone asked for it. */
export function remoteAddressOf (socket: { readonly remoteAddress?: string | undefined }): string {
  return socket.remoteAddress ?? 'unknown'
}
