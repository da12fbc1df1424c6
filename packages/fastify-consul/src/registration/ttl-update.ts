import type { ConsulHttp, ConsulResponse } from '../consul/http.js'
import type { Logger } from '../util/logger.js'
import { advertisedStatus, type HealthSource } from './health-contribution.js'

// 1.8 answers 500 "does not have associated TTL" (or "Unknown check" with ACLs); current versions 404.
const TTL_GONE = /does not have associated TTL|Unknown check/i

/**
 * One TTL beat: the app's health as the check's Status and Output. 'gone' when the agent no longer
 * knows the check (the caller registers again); a failed send is logged and left to the next beat.
 */
export async function updateTtl (http: ConsulHttp, log: Logger, checkId: string, current: ReturnType<HealthSource['status']>, signal: AbortSignal): Promise<'sent' | 'gone'> {
  let res: ConsulResponse
  try {
    res = await http.send({
      method: 'PUT',
      path: `/v1/agent/check/update/${encodeURIComponent(checkId)}`,
      body: { Status: advertisedStatus(current), Output: summarize(current) },
      signal
    })
  } catch (err) {
    log.debug({ code: (err as { code?: string }).code }, 'consul TTL update failed; the next beat retries')
    return 'sent'
  }
  return res.status === 404 || (res.status === 500 && TTL_GONE.test(res.text)) ? 'gone' : 'sent'
}

function summarize (status: ReturnType<HealthSource['status']>): string {
  // "warning: cache warning (miss storm); db critical": what an operator reads in the Consul UI.
  const failing = Object.entries(status.checks)
    .filter(([, c]) => c.status !== 'passing')
    .map(([name, c]) => [`${name} ${c.status}`, c.output && `(${c.output})`].filter(Boolean).join(' '))
  return [status.status, failing.join('; ')].filter(Boolean).join(': ')
}
