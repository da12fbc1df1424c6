import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulHttp, ConsulResponse } from '../consul/http.js'
import { fullJitter } from '../util/backoff.js'
import type { Logger } from '../util/logger.js'

// While the agent is away we poll fast: the promise is "re-registered within 1 s of the agent answering".
const HEAL_BACKOFF = { base: 100, cap: 1000 }

export interface SelfHealWatch {
  http: ConsulHttp
  log: Logger
  /** Our service id on the agent. */
  id: string
  /** Longest blocking wait, in ms. Default 5 minutes, Consul's maximum. */
  waitMs?: number | undefined
  random?: (() => number) | undefined
  /** Ends the watch. */
  life: AbortSignal
  /** The agent no longer has us: register again (the watch ends after it). */
  lost: () => Promise<void>
}

/**
 * A blocking query on our own agent entry: it returns at once when the entry changes or disappears.
 * 404 means the agent lost us (restart, wiped data) → register again. Errors mean the agent is away →
 * poll fast with a short cap, so we are back within ~1 s of it answering.
 */
export async function watchSelf ({ http, log, id, waitMs = 300_000, random, life, lost }: SelfHealWatch): Promise<void> {
  const wait = waitMs / 1000
  let hash: string | undefined
  // The odd answer last logged: a revoked token answers 403 on every try, and once is enough.
  let problem: string | undefined
  for (let failures = 0; !life.aborted;) {
    let res: ConsulResponse
    try {
      res = await http.send({
        path: `/v1/agent/service/${encodeURIComponent(id)}`,
        query: { hash, wait: hash ? `${wait}s` : undefined },
        // Consul adds up to wait/16 of jitter; the margin covers the round trip.
        timeout: (wait + wait / 16) * 1000 + 5000,
        signal: life
      })
    } catch {
      if (life.aborted) return
      hash = undefined
      await sleep(fullJitter(failures++, HEAL_BACKOFF, random) + 50, undefined, { signal: life }).catch(() => {})
      continue
    }
    failures = 0
    if (res.status === 404) {
      log.warn({ serviceId: id }, 'consul agent no longer has this service; registering again')
      await lost()
      return
    }
    if (res.status !== 200) {
      // e.g. 403 after a token was revoked: keep watching, slowly, and say so once per change.
      const reason = res.text.trim().slice(0, 512)
      if (problem !== `${res.status} ${reason}`) {
        problem = `${res.status} ${reason}`
        log.warn({ serviceId: id, status: res.status, reason }, 'consul self-heal watch got an unexpected answer')
      }
      hash = undefined
      await sleep(HEAL_BACKOFF.cap, undefined, { signal: life }).catch(() => {})
      continue
    }
    if (problem !== undefined) {
      problem = undefined
      log.info({ serviceId: id }, 'consul self-heal watch answers normally again')
    }
    hash = res.contentHash
  }
}
