import { setTimeout as sleep } from 'node:timers/promises'

/** Resolves after `ms`, or early when the signal aborts; never rejects, never holds the process open. */
export async function pause (ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return
  try {
    await sleep(ms, undefined, { signal, ref: false })
  } catch {}
}
