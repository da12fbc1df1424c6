/**
 * How long an instance that answered 503 or 429 asked to be left alone, from its `Retry-After` (RFC 9110
 * §10.2.3): delta-seconds, or an HTTP-date. Read from the answer's raw header pairs as undici hands them
 * over. Undefined when there is none, when it is malformed or repeated, or when it asks for no wait at
 * all: a header that cannot be read is ignored, never guessed at. The caller bounds it (maxEjectionMs).
 */
export function retryAfterMs (headers: ReadonlyArray<Buffer | string>, now: number): number | undefined {
  let value: string | undefined
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toString().toLowerCase() !== 'retry-after') continue
    if (value !== undefined) return undefined
    value = headers[i + 1]!.toString().trim()
  }
  if (value === undefined) return undefined
  if (/^\d{1,9}$/.test(value)) {
    const ms = Number(value) * 1000
    return ms > 0 ? ms : undefined
  }
  // An HTTP-date has a weekday, a comma and GMT; Date.parse would take far looser text than that.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) return undefined
  const ms = Date.parse(value) - now
  return ms > 0 ? ms : undefined
}
