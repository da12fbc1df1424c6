import type { Dispatcher } from 'undici'

// A try's headers are the caller's plus a few of ours (the remaining deadline, the trace context).
// undici takes headers in three shapes; these read and rewrite each without flattening values.

type Headers = Dispatcher.DispatchOptions['headers']
type Pairs = Iterable<[string, string | string[] | undefined]>

/** The value of header `name` (lowercase), as the caller gave it: an array when it was repeated. */
export function headerValue (headers: Headers, name: string): string | string[] | undefined {
  return headerValues(headers, [name])[name]
}

/**
 * The values of the headers `names` (lowercase), read in one pass over the caller's headers: each
 * dispatched request reads three (the deadline and the trace context), and this is per request.
 */
export function headerValues<N extends string> (headers: Headers, names: readonly N[]): Partial<Record<N, string | string[]>> {
  const found: Partial<Record<string, string[]>> = {}
  if (headers === null || headers === undefined) return {}
  const add = (key: string, value: string | string[] | undefined): void => {
    if (value === undefined) return
    const name = key.toLowerCase()
    if (!names.includes(name as N)) return
    const values = found[name] ?? (found[name] = [])
    if (Array.isArray(value)) values.push(...value)
    else values.push(value)
  }
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i]!, headers[i + 1])
  } else if (isPairs(headers)) {
    for (const [key, value] of headers) add(key, value)
  } else {
    for (const [key, value] of Object.entries(headers)) add(key, value)
  }
  const out: Partial<Record<string, string | string[]>> = {}
  for (const [name, values] of Object.entries(found)) if (values!.length > 0) out[name] = values!.length === 1 ? values![0] : values
  return out as Partial<Record<N, string | string[]>>
}

/**
 * The caller's headers with `set` in place of any header of the same name (lowercase keys), in the
 * caller's shape for a flat array and as an object otherwise. The caller's object is never changed:
 * a request may be sent several times, each try with its own values.
 */
export function withHeaders (headers: Headers, set: Readonly<Record<string, string>>): Headers {
  const names = Object.keys(set)
  if (names.length === 0) return headers
  const ours = (key: string): boolean => Object.hasOwn(set, key.toLowerCase())
  if (Array.isArray(headers)) {
    const out: string[] = []
    for (let i = 0; i + 1 < headers.length; i += 2) if (!ours(headers[i]!)) out.push(headers[i]!, headers[i + 1]!)
    for (const name of names) out.push(name, set[name]!)
    return out
  }
  const out: Record<string, string | string[]> = {}
  const entries: Pairs = headers === null || headers === undefined ? [] : isPairs(headers) ? headers : Object.entries(headers)
  for (const [key, value] of entries) if (value !== undefined && !ours(key)) out[key] = value
  return Object.assign(out, set)
}

function isPairs (headers: object): headers is Pairs {
  return typeof (headers as Partial<Pairs>)[Symbol.iterator] === 'function'
}
