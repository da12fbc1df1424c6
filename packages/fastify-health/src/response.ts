import { Type } from '@sinclair/typebox'
import type { CheckStatus } from './checks.js'

// What /health and /health/live send: status codes as Consul reads them, and response schemas that
// fast-json-stringify compiles (and that strip anything the schema does not name).

/** Consul's HTTP check: 2xx is passing, 429 is warning, anything else is critical. */
export const HTTP_STATUS: Readonly<Record<CheckStatus, number>> = Object.freeze({
  passing: 200,
  warning: 429,
  critical: 503
})

export const JSON_TYPE = 'application/json; charset=utf-8'

const Status = Type.Union([Type.Literal('passing'), Type.Literal('warning'), Type.Literal('critical')])

const CheckEntry = Type.Object({
  status: Status,
  output: Type.Optional(Type.String()),
  durationMs: Type.Number(),
  checkedAt: Type.String({ format: 'date-time' }),
  critical: Type.Boolean(),
  starting: Type.Optional(Type.Literal(true))
})

export const DetailedBody = Type.Object({
  status: Status,
  draining: Type.Boolean(),
  underPressure: Type.Boolean(),
  pressure: Type.Array(Type.Union([
    Type.Literal('eventLoopDelay'),
    Type.Literal('heapUsedBytes'),
    Type.Literal('rssBytes'),
    Type.Literal('eventLoopUtilization')
  ])),
  checks: Type.Record(Type.String(), CheckEntry)
}, { description: 'Readiness with details' })

/** Without details only the verdict goes out: no check names or error messages for anonymous callers. */
export const SummaryBody = Type.Object({ status: Status }, { description: 'Readiness' })

export function readinessResponses (details: boolean): Record<number, typeof DetailedBody | typeof SummaryBody> {
  const body = details ? DetailedBody : SummaryBody
  return { 200: body, 429: body, 503: body }
}

/** Liveness never varies, so its body is serialised once. */
export const LIVE_BODY = JSON.stringify({ status: 'passing' })
