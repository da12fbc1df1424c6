import { blockingParams, nextIndex } from '../consul/blocking-query.js'
import type { ConsulHttp, ConsulResponse } from '../consul/http.js'

/**
 * Resolves once Consul's `?passing` view of `service` no longer lists `id`: the moment callers that
 * watch Consul stop picking us. A blocking query returns as soon as the view changes, so this usually
 * takes one round trip. Bounded by `timeoutMs`; an unreachable agent ends the wait at once, since
 * nothing can be confirmed then.
 */
export async function leftHealthyView (http: ConsulHttp, service: string, id: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  let index = 0
  while (Date.now() < deadline) {
    const wait = Math.max(1000, deadline - Date.now())
    let res: ConsulResponse
    try {
      res = await http.send({
        path: `/v1/health/service/${encodeURIComponent(service)}`,
        query: { passing: true, ...blockingParams(index, wait) },
        timeout: deadline - Date.now() + 1000
      })
    } catch {
      return false
    }
    if (res.status !== 200) return false
    let listed: boolean
    try {
      listed = (JSON.parse(res.text) as Array<{ Service?: { ID?: string } }>).some((e) => e.Service?.ID === id)
    } catch {
      return false
    }
    if (!listed) return true
    index = nextIndex(index, res.index)
  }
  return false
}
