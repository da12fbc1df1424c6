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

/**
 * The request's `Via` already names this gateway (RFC 9110 §7.6.3): it went round a forwarding loop, for
 * example an upstream instance registered at the gateway's own address. 508 Loop Detected (RFC 5842 §7.2)
 * ends the loop at its second pass instead of letting every hop forward and retry it again.
 */
export const LoopDetectedError = createError<'FST_REG_GATEWAY_LOOP_DETECTED', 508, []>(
  'FST_REG_GATEWAY_LOOP_DETECTED', 'the request has already passed through this gateway', 508)

/**
 * The live view was asked for under a Host it does not answer to. Against DNS rebinding: a page on
 * another site whose name was made to resolve to this gateway sends its own name as Host. 421
 * Misdirected Request (RFC 9110 §15.5.20) says exactly that: this server does not serve that authority;
 * a 403 would say the client lacks a permission it could get.
 */
export const MisdirectedRequestError = createError<'FST_REG_GATEWAY_MISDIRECTED', 421, [string]>(
  'FST_REG_GATEWAY_MISDIRECTED', 'the live view does not answer to host %s', 421)

/** The live view already has its maximum of open event streams; each holds a socket and a buffer. */
export const TooManyStreamsError = createError<'FST_REG_GATEWAY_TOO_MANY_STREAMS', 503, [number]>(
  'FST_REG_GATEWAY_TOO_MANY_STREAMS', 'the live view already has %d open event streams', 503)
