import type { BlockingLoopTuning } from './blocking-loop.js'
import type { AuthorizerTuning } from './authorizer.js'

// The one place Connect's defaults live until the plugin's `connect` option gets its schema (then they
// move to that option file, as discovery's did). The cores take complete settings.

/** Leaf, roots and intentions loops: the discovery watcher's values (5 min wait, 200 ms–30 s backoff, 10/s). */
export const CONNECT_LOOP_DEFAULTS: Readonly<BlockingLoopTuning> = Object.freeze({
  wait: 5 * 60_000,
  backoff: Object.freeze({ base: 200, cap: 30_000 }),
  rateLimit: Object.freeze({ perSecond: 10, burst: 10 })
})

export const AUTHORIZER_DEFAULTS: Readonly<AuthorizerTuning> = Object.freeze({
  ...CONNECT_LOOP_DEFAULTS,
  // Without a live intentions watch (denied by ACLs, agent away) a decision is asked again after this:
  // half the 1 s promise, leaving the other half for the agent's answer.
  ttl: 500,
  // The agent's authorize cache and our intentions watch are two blocking queries on the same change;
  // decisions fetched this soon after a change are asked once more, in case ours returned first.
  settle: 250,
  // authorize is answered from the agent's memory in about a millisecond; a request waits at most this.
  authorizeTimeout: 1000,
  maxCallers: 4096
})
