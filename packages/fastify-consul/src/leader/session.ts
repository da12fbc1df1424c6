import { goDuration } from '../consul/duration.js'
import { httpError, type ConsulHttp } from '../consul/http.js'
import { BadResponseError } from '../errors.js'

// Consul sessions, the three calls a lock needs. Behavior "release" (the default) frees the session's
// keys when it is invalidated, and Consul then refuses them to everyone for LockDelay.

export interface SessionSpec {
  name: string
  /** ms */
  ttl: number
  /** ms */
  lockDelay: number
}

export async function createSession (http: ConsulHttp, spec: SessionSpec, signal?: AbortSignal): Promise<string> {
  const res = await http.ok({
    method: 'PUT',
    path: '/v1/session/create',
    body: { Name: spec.name, TTL: goDuration(spec.ttl), LockDelay: goDuration(spec.lockDelay), Behavior: 'release' },
    signal
  })
  const id = (JSON.parse(res.text) as { ID?: unknown }).ID
  if (typeof id !== 'string') throw new BadResponseError('PUT /v1/session/create', 'no ID')
  return id
}

/** True when renewed; false when Consul no longer knows the session (expired, destroyed, agent wiped). */
export async function renewSession (http: ConsulHttp, id: string): Promise<boolean> {
  const res = await http.send({ method: 'PUT', path: `/v1/session/renew/${id}` })
  if (res.status === 404) return false
  if (res.status !== 200) throw httpError('PUT /v1/session/renew', res)
  return true
}

/** Destroying a session that holds a lock starts its LockDelay: release the key first. */
export async function destroySession (http: ConsulHttp, id: string): Promise<void> {
  await http.ok({ method: 'PUT', path: `/v1/session/destroy/${id}`, timeout: 2000 })
}
