import createError from '@fastify/error'

// Every error this app throws or answers with, made with @fastify/error as Fastify's own are: each has a
// stable `code` (one prefix for the app, FST_REG_GATEWAY_) and a `statusCode` that Fastify's error handler
// answers with. Tests match on `code`; the messages are for humans and may change. No upstream at all is
// answered with @reg/fastify-consul's own FST_REG_DISCOVERY_NO_INSTANCE (503).

/** The upstream failed without a usable answer: connection refused or reset on every instance tried, a broken response. */
export const BadGatewayError = createError<'FST_REG_GATEWAY_BAD_GATEWAY', 502, [string, { cause: unknown }]>(
  // Addresses and low-level messages stay in the log (through `cause`); callers learn which upstream failed.
  'FST_REG_GATEWAY_BAD_GATEWAY', 'no usable answer from %s', 502)

/** The upstream did not start answering within the gateway's `timeout`, or could not be connected to in time. */
export const UpstreamTimeoutError = createError<'FST_REG_GATEWAY_TIMEOUT', 504, [string, { cause: unknown }]>(
  'FST_REG_GATEWAY_TIMEOUT', '%s did not answer in time', 504)

/** More than one Host line (RFC 9112 §3.2): which one is meant is ambiguous, so neither is trusted. */
export const DuplicateHostError = createError<'FST_REG_GATEWAY_DUPLICATE_HOST', 400, []>(
  'FST_REG_GATEWAY_DUPLICATE_HOST', 'a request must have exactly one Host header', 400)

/** An app option with a value the gateway cannot use; thrown while registering, so ready() rejects. */
export const InvalidOptionError = createError<'FST_REG_GATEWAY_INVALID_OPTION', 500, [string, string]>(
  'FST_REG_GATEWAY_INVALID_OPTION', 'invalid @reg/gateway option %s: expected %s', 500)

/** The environment cannot start the server: one message naming every bad variable. */
export const ConfigError = createError<'FST_REG_GATEWAY_CONFIG', 500, [string]>(
  'FST_REG_GATEWAY_CONFIG', 'invalid environment: %s', 500)
