/**
 * The logging surface the core modules use: pino's, structurally. The adapter passes Fastify's logger
 * (a pino child), and nothing below the adapter imports `fastify` for it.
 */
export interface LogFn {
  (obj: object, msg?: string): void
  (msg: string): void
}

export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  child (bindings: Record<string, unknown>): Logger
}
