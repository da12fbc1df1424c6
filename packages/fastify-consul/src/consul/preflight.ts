import { UnreachableError } from '../errors.js'
import type { ConsulHttp } from './http.js'

/**
 * failFast's check before the app binds: the agent answers, its cluster has a leader, and a token (if
 * any) is known to it. Rejects with FST_REG_CONSUL_UNREACHABLE or FST_REG_CONSUL_ACL_DENIED.
 */
export async function preflight (http: ConsulHttp, address: string): Promise<void> {
  const res = await http.send({ path: '/v1/status/leader', timeout: 5000 })
  // A leaderless cluster answers 200 with "": it cannot take a registration either.
  if (res.status !== 200 || res.text.length <= 2) throw new UnreachableError(address, res.status === 200 ? 'no cluster leader' : `status ${res.status}`)
  if (http.hasToken) {
    await http.ok({ path: '/v1/acl/token/self' }).catch((err: { code?: string }) => {
      // 401/"ACL support disabled" means the token cannot be wrong; only a 403 is fatal.
      if (err.code === 'FST_REG_CONSUL_ACL_DENIED') throw err
    })
  }
}
