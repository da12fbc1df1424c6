import { Pool, type Dispatcher } from 'undici'
import type { LegacyHandler } from './undici-handler.js'

/**
 * One keep-alive undici Pool per upstream origin, made on first use and closed when the origin leaves.
 * An `https:` origin is a Connect-native instance: its pool dials with `native` (see connect-dialing.ts).
 */
export class UpstreamPools {
  readonly #options: Pool.Options
  readonly #native: Pool.Options
  readonly #pools = new Map<string, Pool>()

  /**
   * `native` undefined: the dispatcher routes no Connect-native instance (this app has no identity). Were
   * one sent anyway, the plain options dial it with node's default CAs, which refuse a Connect certificate.
   */
  constructor (options: Pool.Options, native?: Pool.Options) {
    this.#options = options
    this.#native = native ?? options
  }

  /** Hands one attempt to the origin's pool; building the pool or dispatching may throw (the caller's failed attempt). */
  send (origin: string, opts: Dispatcher.DispatchOptions, handler: LegacyHandler): void {
    let pool = this.#pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, origin.startsWith('https:') ? this.#native : this.#options)
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
