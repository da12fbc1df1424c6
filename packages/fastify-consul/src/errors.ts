import createError from '@fastify/error'

// Every error this package throws or logs. Codes are the stable contract; messages may change.
// None of them ever carries the ACL token: callers pass paths and bodies, never headers.

export const InvalidOptionError = createError<'FST_REG_CONSUL_INVALID_OPTION', 500, [string, string]>(
  'FST_REG_CONSUL_INVALID_OPTION', 'Invalid @reg/fastify-consul option %s: expected %s', 500)

export const AlreadyRegisteredError = createError<'FST_REG_CONSUL_ALREADY_REGISTERED', 500, []>(
  'FST_REG_CONSUL_ALREADY_REGISTERED', '@reg/fastify-consul is already registered on this instance (fastify.consul exists)', 500)

export const TokenFileError = createError<'FST_REG_CONSUL_TOKEN_FILE', 500, [string, string]>(
  'FST_REG_CONSUL_TOKEN_FILE', 'Cannot read the Consul token file %s: %s', 500)

export const UnreachableError = createError<'FST_REG_CONSUL_UNREACHABLE', 503, [string, string]>(
  'FST_REG_CONSUL_UNREACHABLE', 'Consul agent at %s is unreachable: %s', 503)

export const ConsulHttpError = createError<'FST_REG_CONSUL_HTTP', 502, [string, number, string]>(
  'FST_REG_CONSUL_HTTP', 'Consul answered %s with %d: %s', 502)

export const AclDeniedError = createError<'FST_REG_CONSUL_ACL_DENIED', 403, [string, string]>(
  'FST_REG_CONSUL_ACL_DENIED', 'Consul denied %s (check the ACL token): %s', 403)

export const RegistrationRejectedError = createError<'FST_REG_CONSUL_REGISTRATION_REJECTED', 500, [string, number, string]>(
  'FST_REG_CONSUL_REGISTRATION_REJECTED', 'Consul rejected the registration of %s with %d: %s', 500)

export const NotListeningError = createError<'FST_REG_CONSUL_NOT_LISTENING', 500, []>(
  'FST_REG_CONSUL_NOT_LISTENING', 'register() needs a bound server: call it after listen(), or set service.port', 500)

export const DiscoveryInvalidOptionError = createError<'FST_REG_DISCOVERY_INVALID_OPTION', 500, [string, string]>(
  'FST_REG_DISCOVERY_INVALID_OPTION', 'Invalid discovery option %s: expected %s', 500)

export const NoInstanceError = createError<'FST_REG_DISCOVERY_NO_INSTANCE', 503, [string]>(
  'FST_REG_DISCOVERY_NO_INSTANCE', 'No healthy instance of %s', 503)

export const BadResponseError = createError<'FST_REG_DISCOVERY_BAD_RESPONSE', 502, [string, string]>(
  'FST_REG_DISCOVERY_BAD_RESPONSE', 'Consul answered %s with a malformed body: %s', 502)

export const WatchClosedError = createError<'FST_REG_DISCOVERY_CLOSED', 500, [string]>(
  'FST_REG_DISCOVERY_CLOSED', 'The watch for %s is closed', 500)
