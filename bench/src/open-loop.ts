import { Agent, request, type Dispatcher } from 'undici'

/** One request of an open-loop load: when it was due and when it ended (ms from the load's start), and whether it got a 2xx. */
export interface Sample {
  due: number
  done: number
  ok: boolean
  /** The replica that answered (its `x-instance-id`), when the answer said. */
  instance?: string
}

export interface OpenLoop {
  readonly samples: Sample[]
  /** ms since the load started (the clock of `due` and `done`). */
  now (): number
  /** Stops sending, waits for every request in flight (each bounded by the timeout), returns the samples. Idempotent. */
  stop (): Promise<Sample[]>
}

export interface OpenLoopOptions {
  /** Requests per second, sent on schedule whether or not earlier ones have answered. */
  rate: number
  /** Sends through this dispatcher (a discovery dispatcher); default: a dedicated undici Agent. */
  dispatcher?: Dispatcher
  /** Gives up on a request after this long; it then counts as failed. Default 15 s (past the gateway's 10 s). */
  timeoutMs?: number
  /** Headers for each request, made when it is sent (P18's deadline). Default none. */
  headers?: () => Record<string, string>
  /**
   * The origin (`http://host:port`) of each request, looked up when it is sent, for a client that asks
   * Consul before every request (P20's prepared-query and DNS anchors): the lookup counts in the
   * latency, and a lookup that fails fails the request. Default: `url`'s own.
   */
  origin?: () => Promise<string>
}

/**
 * GET `url` at a fixed rate (an open loop): a stalled request does not hold back the next ones, so a
 * stuck replica shows as slow or failed requests instead of as a lower rate, and a window with nothing
 * wrong delivers exactly what was offered (the null control is exact). Latency is counted from when
 * a request was due, not when it went out, so a late send is not hidden (no coordinated omission).
 */
export function openLoop (url: string, opts: OpenLoopOptions): OpenLoop {
  const timeoutMs = opts.timeoutMs ?? 15_000
  const own = opts.dispatcher ? undefined : new Agent({ headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  const dispatcher = opts.dispatcher ?? own!
  const start = performance.now()
  const now = (): number => performance.now() - start
  const samples: Sample[] = []
  const { pathname, search } = new URL(url)
  const inflight = new Map<number, Promise<void>>()
  let sent = 0
  const fire = (due: number): void => {
    // Removes itself from `inflight` when done; the first await comes before that, so it is in by then.
    const p = (async () => {
      let ok = false
      let instance: string | undefined
      try {
        // undici's own timers, not an AbortSignal per request: thousands of those cost a loaded loop dearly.
        const target = opts.origin === undefined ? url : `${await opts.origin()}${pathname}${search}`
        const res = await request(target, { dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers: opts.headers?.() })
        await res.body.arrayBuffer()
        ok = res.statusCode >= 200 && res.statusCode < 300
        instance = res.headers['x-instance-id'] as string | undefined
      } catch {}
      samples.push({ due, done: now(), ok, instance })
      inflight.delete(due)
    })()
    inflight.set(due, p)
  }
  // A 5 ms tick sends whatever has fallen due since the last one.
  const tick = setInterval(() => {
    const due = Math.floor(now() * opts.rate / 1000)
    for (; sent < due; sent++) fire(sent * 1000 / opts.rate)
  }, 5)
  // Once: a scenario stops the loop to read it, and again in its `finally` for the paths that threw.
  let stopped: Promise<Sample[]> | undefined
  return {
    samples,
    now,
    async stop () {
      stopped ??= (async () => {
        clearInterval(tick)
        while (inflight.size > 0) await Promise.all([...inflight.values()])
        await own?.close()
        return samples
      })()
      return await stopped
    }
  }
}

export interface WindowStats {
  /** Requests due in the window. */
  sent: number
  /** Of those, the ones that failed (an error, a non-2xx, or no answer within the timeout). */
  failed: number
  /** Of those, the ones that took more than 1 s, failed or not. */
  slow: number
  /** 2xx answers that arrived within the window ÷ requests due in it: 1 when nothing is held up. */
  delivered: number
  p50: number
  p99: number
  max: number
}

/** The q-quantile (0–1) of sorted `xs`, nearest rank. */
export function quantile (sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

/** The requests due in [from, to) and how they went; latency from when each was due. */
export function windowStats (samples: Sample[], from: number, to: number): WindowStats {
  const inWindow = samples.filter((s) => s.due >= from && s.due < to)
  const ms = inWindow.map((s) => s.done - s.due).sort((a, b) => a - b)
  const arrived = samples.filter((s) => s.ok && s.done >= from && s.done < to).length
  if (ms.length === 0) return { sent: 0, failed: 0, slow: 0, delivered: 0, p50: 0, p99: 0, max: 0 }
  return {
    sent: inWindow.length,
    failed: inWindow.filter((s) => !s.ok).length,
    slow: ms.filter((x) => x > 1000).length,
    delivered: arrived / inWindow.length,
    p50: quantile(ms, 0.5),
    p99: quantile(ms, 0.99),
    max: ms[ms.length - 1]!
  }
}
