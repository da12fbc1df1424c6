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

/**
 * A failover datacenter the local agent does not know (not in `/v1/catalog/datacenters`). `%s` is the
 * field as written (`discovery.failover.datacenters[1]`): a typo in a failover list would otherwise
 * only show in the outage it was meant for.
 */
export const UnknownDatacenterError = createError<'FST_REG_DISCOVERY_UNKNOWN_DATACENTER', 500, [string, string, string]>(
  'FST_REG_DISCOVERY_UNKNOWN_DATACENTER', 'Invalid discovery option %s: Consul knows no datacenter "%s" (it knows %s)', 500)

export const NoInstanceError = createError<'FST_REG_DISCOVERY_NO_INSTANCE', 503, [string]>(
  'FST_REG_DISCOVERY_NO_INSTANCE', 'No healthy instance of %s', 503)

export const BadResponseError = createError<'FST_REG_DISCOVERY_BAD_RESPONSE', 502, [string, string]>(
  'FST_REG_DISCOVERY_BAD_RESPONSE', 'Consul answered %s with a malformed body: %s', 502)

/**
 * An attempt could not even be started on an instance: building its connection pool or handing it the
 * request threw (an address that slipped past parsing, a pool in a bad state). It counts as a
 * connection failure: never sent, so retried elsewhere for any method, and the instance is ejected.
 */
export const UpstreamUnusableError = createError<'FST_REG_DISCOVERY_UPSTREAM_UNUSABLE', 502, [string, string]>(
  'FST_REG_DISCOVERY_UPSTREAM_UNUSABLE', 'Instance %s cannot take a request: %s', 502)

/**
 * A dispatcher gave up on a request before any answer reached the caller: every try failed, or the
 * failure could not be retried (method, body, budget, no instance left untried). The message names the
 * service, the tries and the last try's code, never an address, so a route that rethrows it shows the
 * client nothing internal. `cause` is the last try's own error (undici's, or ours); `tries` and
 * `instances` (the instance IDs in the order tried) are for the log. `classifyFailure` looks through it.
 */
export const DispatchFailedError = createError<'FST_REG_DISCOVERY_DISPATCH_FAILED', 502, [string, number, string, { cause: unknown }]>(
  'FST_REG_DISCOVERY_DISPATCH_FAILED', 'Gave up on %s after %d attempt(s); the last failed with %s (see cause)', 502)

/** What a `DispatchFailedError` carries besides its message and cause. */
export interface DispatchFailure {
  /** Attempts made, retries included. */
  readonly tries: number
  /** The Consul service IDs tried, in order. */
  readonly instances: readonly string[]
}

/**
 * A request's deadline passed before its answer ended (the dispatcher's `deadline`, the caller's
 * `x-envoy-expected-rq-timeout-ms`, or the one inherited from the request being handled). Raised the
 * moment it passes, with every try in flight aborted: a 504, as a gateway that timed out answers.
 */
export const DeadlineExceededError = createError<'FST_REG_DISCOVERY_DEADLINE_EXCEEDED', 504, [string, number]>(
  'FST_REG_DISCOVERY_DEADLINE_EXCEEDED', 'The deadline for %s (%d ms) passed before an answer; every try in flight was aborted', 504)

export const NotReadyError = createError<'FST_REG_DISCOVERY_NOT_READY', 503, [string, number]>(
  'FST_REG_DISCOVERY_NOT_READY', 'Consul gave no answer about %s within readyTimeout (%d ms); the watch keeps trying, and its log at warn says why', 503)

export const WatchClosedError = createError<'FST_REG_DISCOVERY_CLOSED', 500, [string]>(
  'FST_REG_DISCOVERY_CLOSED', 'The watch for %s is closed', 500)

// TLS with the agent. Each names the cause and the setting to change, as the user wrote it (the option,
// or Consul's CLI variable). They are outages to the registrar and the watchers: retried with backoff.

export const TlsUntrustedError = createError<'FST_REG_CONSUL_TLS_UNTRUSTED', 503, [string, string, string]>(
  'FST_REG_CONSUL_TLS_UNTRUSTED', 'The Consul agent at %s presented a certificate that no trusted CA signed (%s): set %s to the CA that signed the agent\'s certificate', 503)

export const TlsServerNameError = createError<'FST_REG_CONSUL_TLS_SERVER_NAME', 503, [string, string, string]>(
  'FST_REG_CONSUL_TLS_SERVER_NAME', 'The certificate of the Consul agent at %s does not match the name we checked (%s): set %s to a name the certificate lists, e.g. server.<datacenter>.consul', 503)

export const TlsCertExpiredError = createError<'FST_REG_CONSUL_TLS_CERT_EXPIRED', 503, [string, string]>(
  'FST_REG_CONSUL_TLS_CERT_EXPIRED', 'A certificate has expired: %s; renew %s', 503)

export const TlsClientCertRequiredError = createError<'FST_REG_CONSUL_TLS_CLIENT_CERT_REQUIRED', 503, [string, string]>(
  'FST_REG_CONSUL_TLS_CLIENT_CERT_REQUIRED', 'The Consul agent at %s requires a client certificate (verify_incoming): set %s', 503)

export const TlsClientCertRejectedError = createError<'FST_REG_CONSUL_TLS_CLIENT_CERT_REJECTED', 503, [string, string, string]>(
  'FST_REG_CONSUL_TLS_CLIENT_CERT_REJECTED', 'The Consul agent at %s rejected our client certificate (%s): %s must be signed by a CA in the agent\'s ca_file and allow clientAuth', 503)

export const TlsNotOfferedError = createError<'FST_REG_CONSUL_TLS_NOT_OFFERED', 503, [string, string]>(
  'FST_REG_CONSUL_TLS_NOT_OFFERED', 'The Consul agent at %s does not speak TLS on that port: point %s at its HTTPS port, or use http://', 503)

export const TlsRequiredError = createError<'FST_REG_CONSUL_TLS_REQUIRED', 503, [string, string]>(
  'FST_REG_CONSUL_TLS_REQUIRED', 'The Consul agent at %s only accepts HTTPS on that port: use an https:// address or set %s', 503)

export const TlsError = createError<'FST_REG_CONSUL_TLS', 503, [string, string]>(
  'FST_REG_CONSUL_TLS', 'TLS with the Consul agent at %s failed: %s', 503)

// Configuration from KV (config/) and leader election (leader/). A KV problem names the key as written
// in Consul (`config/user-service/pageSize`), so `consul kv get` finds it.

export const ConfigInvalidOptionError = createError<'FST_REG_CONFIG_INVALID_OPTION', 500, [string, string]>(
  'FST_REG_CONFIG_INVALID_OPTION', 'Invalid @reg/fastify-consul option %s: expected %s', 500)

export const ConfigInvalidError = createError<'FST_REG_CONFIG_INVALID', 500, [string, string]>(
  'FST_REG_CONFIG_INVALID', 'Invalid configuration in Consul KV key %s: expected %s', 500)

export const ConfigUnavailableError = createError<'FST_REG_CONFIG_UNAVAILABLE', 503, [string, string]>(
  'FST_REG_CONFIG_UNAVAILABLE', 'Cannot load the configuration under Consul KV prefix %s: %s', 503)

export const LeaderInvalidOptionError = createError<'FST_REG_LEADER_INVALID_OPTION', 500, [string, string]>(
  'FST_REG_LEADER_INVALID_OPTION', 'Invalid leader() option %s: expected %s', 500)

// Consul Connect (connect/). A message that reaches a caller (401, 403, 503) names services, never an
// intention ID, a reason text or an address.

/** Intentions deny this caller: an answer, not a failure, so a caller's dispatcher neither retries nor ejects. */
export const ConnectForbiddenError = createError<'FST_REG_CONNECT_FORBIDDEN', 403, [string, string]>(
  'FST_REG_CONNECT_FORBIDDEN', 'Consul Connect intentions do not allow %s to call %s', 403)

/** The peer has no Connect identity we accept (no verified certificate, no or several URI SANs, another trust domain). */
export const ConnectUnauthenticatedError = createError<'FST_REG_CONNECT_UNAUTHENTICATED', 401, [string]>(
  'FST_REG_CONNECT_UNAUTHENTICATED', 'Consul Connect: the caller has no acceptable identity: %s', 401)

/** A caller with no cached decision while the agent cannot answer `authorize`: retry elsewhere or later. */
export const ConnectAuthorizeUnavailableError = createError<'FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE', 503, [string]>(
  'FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE', 'Consul Connect cannot decide whether %s may call: the local agent could not answer', 503)

/**
 * Dialing a Connect-native instance failed in TLS: its certificate is not signed by our roots, names
 * another service or trust domain (Go's connect package check: it stops one service posing as another),
 * or the handshake broke. Counted as a connection failure: the instance is ejected, never retried in a storm.
 */
export const ConnectUpstreamRefusedError = createError<'FST_REG_CONNECT_UPSTREAM_REFUSED', 502, [string, string]>(
  'FST_REG_CONNECT_UPSTREAM_REFUSED', 'Consul Connect: an instance of %s was refused: %s', 502)

/** Every instance of the service is Connect-native and this app has no Connect identity to dial them with. */
export const ConnectIdentityRequiredError = createError<'FST_REG_CONNECT_IDENTITY_REQUIRED', 503, [string]>(
  'FST_REG_CONNECT_IDENTITY_REQUIRED', 'Every instance of %s is Consul Connect-native: this app needs a Connect identity (the plugin\'s `connect` option) to call it', 503)

/** `ready` of something stopped before it was ready. */
export const ConnectClosedError = createError<'FST_REG_CONNECT_CLOSED', 500, [string]>(
  'FST_REG_CONNECT_CLOSED', 'Consul Connect %s was closed before it was ready', 500)

/** The TLS options were asked for before the first leaf certificate and roots arrived. */
export const ConnectNotReadyError = createError<'FST_REG_CONNECT_NOT_READY', 500, [string]>(
  'FST_REG_CONNECT_NOT_READY', 'Consul Connect certificates for %s are not ready yet: await ready first', 500)

/**
 * The agent answered a Connect endpoint with something we cannot use. (../errors.ts has the same shape
 * as FST_REG_DISCOVERY_BAD_RESPONSE; folding the two into one Consul-wide code is for the integration.)
 */
export const ConnectBadResponseError = createError<'FST_REG_CONNECT_BAD_RESPONSE', 502, [string, string]>(
  'FST_REG_CONNECT_BAD_RESPONSE', 'Consul answered %s with a malformed body: %s', 502)

/** `fastify.consul.upstream(name)` for a name the sidecar registered with this service does not list. */
export const ConnectUnknownUpstreamError = createError<'FST_REG_CONNECT_UNKNOWN_UPSTREAM', 500, [string, string]>(
  'FST_REG_CONNECT_UNKNOWN_UPSTREAM', 'No sidecar upstream %s: connect.sidecar.upstreams lists %s', 500)

/** A request sent through an upstream dispatcher after its close(). */
export const ConnectUpstreamClosedError = createError<'FST_REG_CONNECT_UPSTREAM_CLOSED', 500, [string]>(
  'FST_REG_CONNECT_UPSTREAM_CLOSED', 'The sidecar upstream dispatcher for %s is closed', 500)

/**
 * A request through a sidecar upstream failed before a whole answer: the sidecar is down (refused), or it
 * closed the connection (a deny intention at the far sidecar closes new connections after the handshake,
 * and no healthy instance behind it does the same). Not retried: the request may have reached the service.
 */
export const ConnectUpstreamFailedError = createError<'FST_REG_CONNECT_UPSTREAM_FAILED', 502, [string, string, { cause: unknown }]>(
  'FST_REG_CONNECT_UPSTREAM_FAILED', 'The sidecar upstream %s failed: %s (see cause)', 502)
