import type { PeerCertificate } from 'node:tls'
import { buildConnector, type Pool } from 'undici'
import type { ConnectTls } from '../../connect/certificates.js'
import { peerServiceId } from '../../connect/spiffe.js'
import { ConnectUpstreamRefusedError } from '../../errors.js'
import { classifyFailure } from './failure.js'

// Dialing a Connect-native instance (#24): mutual TLS with this app's leaf certificate, the Connect roots
// as the only CA, and then Go's `connect` package check: the server's certificate must carry exactly one
// SPIFFE URI, in our trust domain, naming the service we meant to reach. The CA signing it is not enough:
// every service's leaf is signed by the same CA, so without this check any service could answer for any other.
//
// The datacenter in the URI is not compared: a failover dispatch reaches the same service in another
// datacenter of the same trust domain, and the certificate still names that service.

/** Where the current leaf and roots come from: ConnectCertificates, structurally. */
export interface ConnectIdentitySource {
  readonly current: ConnectTls | undefined
}

/**
 * The server-identity check for `service`: undefined when the peer is that service in `trustDomain`,
 * else a coded FST_REG_CONNECT_UPSTREAM_REFUSED naming what it is instead.
 */
export function serverIdentityCheck (service: string, trustDomain: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const id = peerServiceId(cert, trustDomain)
    if (!id.ok) return new ConnectUpstreamRefusedError(service, id.reason)
    if (id.value.service !== service) return new ConnectUpstreamRefusedError(service, `its certificate is for service ${JSON.stringify(id.value.service)}`)
    return undefined
  }
}

/**
 * Pool options for the Connect-native instances of `service`: `plain` (the dispatcher's pool options)
 * with a connector that reads the current leaf and roots at each new connection. A rotation therefore
 * reaches new connections at once, while established ones (and the requests on them) keep theirs: nothing
 * in flight is dropped. A TLS failure comes out as FST_REG_CONNECT_UPSTREAM_REFUSED, which outlier
 * detection counts as a connection failure (the instance is ejected at once, and the request, of which
 * not a byte left, goes to another instance); unreachable hosts and connect timeouts keep their own codes.
 */
export function connectPoolOptions (source: ConnectIdentitySource, service: string, plain: Pool.Options): Pool.Options {
  // The user's TCP settings (timeout, keep-alive) apply; TLS is ours alone: their `ca` or
  // `rejectUnauthorized: false` must not weaken the check above.
  const tcp = typeof plain.connect === 'object' ? plain.connect : {}
  const timeout = plain.connectTimeout ?? (tcp as { timeout?: number | null }).timeout ?? 10_000
  let built: { tls: ConnectTls, connector: buildConnector.connector } | undefined
  const connect: buildConnector.connector = (options, callback) => {
    const tls = source.current
    /* c8 ignore next 4 -- the plugin takes a handle only once connectNative() has the first pair, and closing keeps the last one */
    if (tls === undefined) {
      callback(new ConnectUpstreamRefusedError(service, 'this app has no Connect certificate yet'), null)
      return
    }
    // One connector per dispatcher and pair: node does not run checkServerIdentity on a resumed TLS
    // session, so its session cache must hold only sessions of servers that passed the check for this
    // one service (and a rotation starts a fresh cache along with the new pair).
    if (built?.tls !== tls) {
      built = {
        tls,
        connector: buildConnector({
          ...tcp,
          timeout,
          cert: tls.cert,
          key: tls.key,
          ca: [...tls.ca],
          minVersion: 'TLSv1.2',
          rejectUnauthorized: true,
          checkServerIdentity: serverIdentityCheck(service, tls.trustDomain)
        })
      }
    }
    built.connector(options, (...args) => {
      const err = args[0]
      if (err === null) callback(null, args[1])
      // Refused, unreachable, timed out (the host, not TLS), or our identity check: those codes already say so.
      else if (classifyFailure(err).kind === 'connect') callback(err, null)
      else callback(Object.assign(new ConnectUpstreamRefusedError(service, tlsReason(err)), { cause: err }), null)
    })
  }
  return { ...plain, connect }
}

/** Node's or OpenSSL's code (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ERR_SSL_WRONG_VERSION_NUMBER`…), never its message. */
function tlsReason (err: Error): string {
  return `TLS handshake failed (${String((err as Error & { code?: unknown }).code)})`
}
