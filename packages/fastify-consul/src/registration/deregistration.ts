import { httpError, type ConsulHttp } from '../consul/http.js'
import type { Logger } from '../util/logger.js'

const REAPED = 'Consul will reap the instance after DeregisterCriticalServiceAfter'

/**
 * One deregistration, bounded by `timeoutMs`: true when the agent no longer has the service. "Unknown
 * service" in any of its forms (200 on 1.8, 404 now, 500 with ACLs on 1.8) is success; a failure is
 * logged once, with what happens next.
 */
export async function deregisterService (http: ConsulHttp, log: Logger, id: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await http.send({
      method: 'PUT',
      path: `/v1/agent/service/deregister/${encodeURIComponent(id)}`,
      // The signal is the deadline; undici's own timeout stays out of its way, so a timeout reads as one.
      timeout: timeoutMs + 1000,
      signal: AbortSignal.timeout(timeoutMs)
    })
    if (res.status < 300 || res.status === 404 || (res.status === 500 && /Unknown service/i.test(res.text))) {
      log.info({ serviceId: id }, 'deregistered from consul')
      return true
    }
    const denied = res.status === 403
    log.error({ err: httpError(`deregister ${id}`, res), serviceId: id },
      `consul deregistration failed: ${denied ? 'denied by ACL (the token needs service:write)' : `rejected with ${res.status}`}; ${REAPED}`)
  } catch (err) {
    const e = err as Error & { code?: string }
    // Our deadline fires as the AbortSignal's TimeoutError; anything else from send() is FST_REG_CONSUL_UNREACHABLE.
    const timedOut = e.name === 'TimeoutError'
    log.error({ code: e.code, name: e.name, reason: e.message, serviceId: id },
      `consul deregistration failed: the agent ${timedOut ? `did not answer within deregisterTimeout (${timeoutMs} ms)` : 'is unreachable'}; ${REAPED}`)
  }
  return false
}
