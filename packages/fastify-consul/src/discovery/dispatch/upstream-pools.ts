import { Pool, type Dispatcher } from 'undici'
import type { LegacyHandler } from './undici-handler.js'

/** One keep-alive undici Pool per upstream origin, made on first use and closed when the origin leaves. */
export class UpstreamPools {
  readonly #options: Pool.Options
  readonly #pools = new Map<string, Pool>()

  constructor (options: Pool.Options) {
    this.#options = options
  }

  /** Hands one attempt to the origin's pool; building the pool or dispatching may throw (the caller's failed attempt). */
  send (origin: string, opts: Dispatcher.DispatchOptions, handler: LegacyHandler): void {
    let pool = this.#pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, this.#options)
      this.#pools.set(origin, pool)
    }
    pool.dispatch({ ...opts, origin }, handler as Dispatcher.DispatchHandler)
  }

  /** Closes the pools of origins no longer live. */
  retain (live: ReadonlyMap<string, unknown>): void {
    for (const [origin, pool] of this.#pools) {
      if (live.has(origin)) continue
      this.#pools.delete(origin)
      // Graceful: requests already on this instance finish; queued ones fail with UND_ERR_CLOSED
      // and are retried elsewhere.
      pool.close().catch(/* c8 ignore next -- close() only rejects on a destroyed pool, which we never leave in the map */ () => {})
    }
  }

  /** Ends every pool (close or destroy) and forgets them. */
  end (how: (pool: Pool) => Promise<void>): Array<Promise<void>> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    return pools.map(how)
  }
}
