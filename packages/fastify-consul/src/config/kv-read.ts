import { blockingParams, requestTimeout } from '../consul/blocking-query.js'
import { httpError, type ConsulHttp } from '../consul/http.js'
import { BadResponseError } from '../errors.js'
import type { KvEntry } from './layering.js'

// One read of every key under a prefix: `GET /v1/kv/<prefix>/?recurse`, blocking when given an index.
// The trailing "/" keeps `config` from also matching `configuration/…`. The agent has no cache for KV
// (`?cached` serves health, catalog and Connect endpoints only), so this is the one query per process.

export interface KvRead {
  entries: KvEntry[]
  /** X-Consul-Index, when present. */
  index: number | undefined
}

export async function readPrefix (http: ConsulHttp, prefix: string, index: number, wait: number, signal?: AbortSignal): Promise<KvRead> {
  const path = `/v1/kv/${prefix.split('/').map(encodeURIComponent).join('/')}/`
  const res = await http.send({ path, query: { recurse: true, ...blockingParams(index, wait) }, timeout: requestTimeout(wait), signal })
  // 404 is an empty prefix, with an index all the same: the next query blocks until a key appears.
  if (res.status === 404) return { entries: [], index: res.index }
  if (res.status !== 200) throw httpError(`GET ${path}`, res)
  let raw: unknown
  try {
    raw = JSON.parse(res.text)
  } catch {
    throw new BadResponseError(`GET ${path}`, 'not JSON')
  }
  if (!Array.isArray(raw)) throw new BadResponseError(`GET ${path}`, 'not an array of KV entries')
  const entries = raw.map((e: { Key?: unknown, Value?: unknown }) => ({
    key: String(e.Key),
    value: typeof e.Value === 'string' ? Buffer.from(e.Value, 'base64').toString('utf8') : null
  }))
  return { entries, index: res.index }
}
