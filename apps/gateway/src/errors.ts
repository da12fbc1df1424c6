// Every error this app throws or answers with. Tests match on `code`; the messages are for humans and may
// change. Shaped like @fastify/error's errors (code, statusCode), so Fastify's error handler answers with
// both; @fastify/error itself is not a dependency of this app (the same choice as @reg/user-service).
// No upstream at all is answered with @reg/fastify-consul's own FST_REG_DISCOVERY_NO_INSTANCE (503).

/** The upstream failed without a usable answer: connection refused or reset on every instance tried, a broken response. */
export class BadGatewayError extends Error {
  readonly code = 'FST_REG_GATEWAY_BAD_GATEWAY'
  readonly statusCode = 502

  constructor (upstream: string, options?: ErrorOptions) {
    // Addresses and low-level messages stay in the log (through `cause`); callers learn which upstream failed.
    super(`no usable answer from ${upstream}`, options)
    this.name = 'BadGatewayError'
  }
}

/** The upstream did not start answering within the gateway's `timeout`, or could not be connected to in time. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'FST_REG_GATEWAY_TIMEOUT'
  readonly statusCode = 504

  constructor (upstream: string, options?: ErrorOptions) {
    super(`${upstream} did not answer in time`, options)
    this.name = 'UpstreamTimeoutError'
  }
}

/** An app option with a value the gateway cannot use; thrown while registering, so ready() rejects. */
export class InvalidOptionError extends Error {
  readonly code = 'FST_REG_GATEWAY_INVALID_OPTION'

  constructor (name: string, expected: string) {
    super(`invalid @reg/gateway option ${name}: expected ${expected}`)
    this.name = 'InvalidOptionError'
  }
}

/** The environment cannot start the server: one message naming every bad variable. */
export class ConfigError extends Error {
  readonly code = 'FST_REG_GATEWAY_CONFIG'

  constructor (problems: readonly string[]) {
    super(`invalid environment: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}
