import type { SecureContextOptions, Server, TLSSocket, TlsOptions } from 'node:tls'
import type { Logger } from '../util/logger.js'
import type { CertificatesListener, ConnectTls } from './certificates.js'
import { ConnectNotReadyError } from '../errors.js'
import { REFUSAL_LOG_WINDOW, RefusalLog, remoteAddressOf } from './refusal-log.js'

// Serving Connect-native: HTTPS that demands a client certificate signed by the Connect CA. Fastify
// builds its server before any plugin runs, so the options come from a keeper that is already ready
// (`Fastify({ https: serverTlsOptions(certs) })`), and attachServerTls() then follows rotations with
// setSecureContext: new handshakes get the new pair and roots, established connections (and the requests
// on them) keep the context they were made with, so nothing restarts and nothing is dropped.

/** What serverTlsOptions and attachServerTls read: ConnectCertificates, structurally. */
export interface TlsSource {
  readonly service: string
  readonly current: ConnectTls | undefined
  subscribe (listener: CertificatesListener): () => void
}

/** The part of the options a rotation replaces. TLS 1.2 is the floor Consul's listeners and Go's connect package use. */
export interface ConnectSecureContextOptions extends SecureContextOptions {
  key: string
  cert: string
  ca: string[]
  minVersion: 'TLSv1.2'
}

export type ConnectServerTlsOptions = TlsOptions & ConnectSecureContextOptions & {
  requestCert: true
  rejectUnauthorized: true
}

export function secureContextOptions (tls: ConnectTls): ConnectSecureContextOptions {
  return { key: tls.key, cert: tls.cert, ca: [...tls.ca], minVersion: 'TLSv1.2' }
}

/**
 * Options for `https.createServer` / `Fastify({ https })`: our leaf, the Connect roots, and a client
 * certificate required and verified by the TLS layer (no certificate, an expired one, or one from another
 * CA never reaches HTTP). Which *service* the verified caller is, and whether intentions allow it, is the
 * authorizer's job on the first request.
 */
export function serverTlsOptions (source: TlsSource): ConnectServerTlsOptions {
  const tls = source.current
  if (tls === undefined) throw new ConnectNotReadyError(source.service)
  return { ...secureContextOptions(tls), requestCert: true, rejectUnauthorized: true }
}

export interface AttachOptions {
  log: Logger
}

/**
 * Follows rotations on `server` (setSecureContext) and logs refused handshakes. Returns the detach
 * function; the server itself stays the caller's to close.
 */
export function attachServerTls (server: Server, source: TlsSource, opts: AttachOptions): () => void {
  const log = opts.log.child({ connect: source.service })
  const refusals = new RefusalLog({ window: REFUSAL_LOG_WINDOW })
  const unsubscribe = source.subscribe({
    rotate (tls) {
      try {
        server.setSecureContext(secureContextOptions(tls))
      } catch (err) {
        // Fail static: the context in place keeps serving. parseLeaf checks the pair, so this is a pair
        // OpenSSL refuses for another reason (a key type this build lacks, say): worth an error line.
        log.error({ err, serial: tls.serial }, 'connect: the rotated certificate was refused; the previous one keeps serving')
        return
      }
      log.debug({ serial: tls.serial }, 'connect: server TLS context swapped')
    }
  })
  // A scanner or a misconfigured caller can fail thousands of handshakes a second: one line per address
  // and reason per window says who and why without flooding the log. A certificate that fails
  // verification (expired, another CA) is not an OpenSSL error: node checks it after the handshake,
  // sets `authorizationError` and destroys the socket, then reports the close here as ECONNRESET, so
  // the reason is read from the socket, and the address is gone by then (node never read it).
  const refused = (err: Error & { code?: string }, socket: TLSSocket): void => {
    const address = remoteAddressOf(socket)
    const reason = handshakeRefusal(err, socket.authorizationError as unknown as string | undefined)
    refusals.once(`${address} ${reason}`, () => log.warn({ remoteAddress: address, code: err.code, reason }, `connect: TLS handshake refused: ${reason}`))
  }
  server.on('tlsClientError', refused)
  return () => {
    unsubscribe()
    server.off('tlsClientError', refused)
  }
}

/** OpenSSL's and node's codes as an operator reads them; the socket's verification verdict first. */
export function handshakeRefusal (err: Error & { code?: string }, authorizationError?: string): string {
  if (authorizationError !== undefined && authorizationError !== null) {
    if (/EXPIRED/.test(authorizationError)) return 'client certificate expired'
    if (/NOT_YET_VALID/.test(authorizationError)) return 'client certificate not yet valid'
    if (/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER|SELF_SIGNED/.test(authorizationError)) return 'client certificate not signed by the Connect CA'
    return `client certificate refused (${authorizationError.slice(0, 64)})`
  }
  const text = `${err.code ?? ''} ${err.message}`
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|NO_CERTIFICATE/i.test(text)) return 'no client certificate'
  if (/EXCESSIVE_MESSAGE_SIZE|CERT_LIST_TOO_LONG|TOO_LARGE/i.test(text)) return 'client certificate chain too large'
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW/i.test(text)) return 'not a TLS 1.2+ handshake (plain HTTP?)'
  return 'handshake failed'
}
