import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import type { ResolvedConnection } from './connection.js'
import type { Credentials } from './credentials.js'
import {
  TlsCertExpiredError, TlsClientCertRejectedError, TlsClientCertRequiredError, TlsError, TlsNotOfferedError,
  TlsServerNameError, TlsUntrustedError
} from '../errors.js'

// Turns OpenSSL's and Node's TLS error codes into coded errors that name the cause and the setting to
// fix. Checked against a real Consul 1.8.7 agent with verify_incoming_https (see test/tls-agent.test.ts).

/** Our side rejected the agent's certificate chain. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED'
])
const SERVER_EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])
/**
 * TLS alerts the agent sends when it does not accept our certificate (Go sends bad_certificate for most).
 * Matched by the alert's name: OpenSSL's prefix changed across versions (`SSLV3_ALERT_…` on Node 20's
 * OpenSSL 3.0, `SSL/TLS_ALERT_…` on Node 22 and 24's).
 */
const CLIENT_REJECTED_ALERTS = new Set([
  'BAD_CERTIFICATE', 'UNKNOWN_CA', 'CERTIFICATE_UNKNOWN', 'UNSUPPORTED_CERTIFICATE', 'CERTIFICATE_REVOKED',
  'CERTIFICATE_EXPIRED', 'CERTIFICATE_REQUIRED'
])
const ALERT = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13|SSL\/TLS)_ALERT_(.+)$/

function clientRejected (code: string): boolean {
  const alert = ALERT.exec(code)?.[1]
  return alert !== undefined && CLIENT_REJECTED_ALERTS.has(alert)
}
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'EPROTO'])

/** Whether `code` is a TLS failure that tlsFailure() names; anything else stays an outage. */
export function isTlsCode (code: string | undefined): boolean {
  return code !== undefined && (UNTRUSTED.has(code) || SERVER_EXPIRED.has(code) || clientRejected(code) ||
    NOT_TLS.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /^ERR_SSL_|^ERR_TLS_/.test(code))
}

/** The coded error for a TLS failure `code` on `conn`, sent with `creds`. */
export function tlsFailure (code: string, detail: string, conn: ResolvedConnection, creds: Credentials, now = new Date()): Error {
  const at = conn.address
  if (UNTRUSTED.has(code)) return new TlsUntrustedError(at, code, conn.names.ca)
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new TlsServerNameError(at, detail, conn.names.serverName)
  if (SERVER_EXPIRED.has(code)) return new TlsCertExpiredError(`the Consul agent's certificate at ${at} (${code})`, 'the agent\'s cert_file')
  if (NOT_TLS.has(code)) return new TlsNotOfferedError(at, conn.names.address)
  if (clientRejected(code)) {
    if (creds.cert === undefined) return new TlsClientCertRequiredError(at, `${conn.names.cert} and ${conn.names.key}`)
    // Go answers bad_certificate whatever the reason, so an expired certificate is told apart here.
    if (creds.certNotAfter !== undefined && creds.certNotAfter < now) {
      return new TlsCertExpiredError(`our client certificate expired on ${creds.certNotAfter.toISOString()}`, conn.names.cert)
    }
    return new TlsClientCertRejectedError(at, code, conn.names.cert)
  }
  return new TlsError(at, `${code}: ${detail}`)
}

/**
 * Why the agent closed a TLS connection. Under TLS 1.3 the agent checks our certificate after the
 * handshake has completed on our side, and undici reports only "other side closed": the agent's
 * alert is lost. One plain TLS connection with the same settings reads that alert back. Resolves with
 * the alert's code, or undefined when the agent answers (so the close was not about TLS).
 */
export async function probeTlsAlert (conn: ResolvedConnection, options: ConnectionOptions, timeoutMs = 5000): Promise<string | undefined> {
  return await new Promise((resolve) => {
    const socket = tlsConnect({
      ...options,
      ...(conn.socketPath !== undefined ? { path: conn.socketPath } : { host: conn.host, port: conn.port })
    }, () => socket.write('GET /v1/status/leader HTTP/1.1\r\nHost: consul\r\nConnection: close\r\n\r\n'))
    const done = (code: string | undefined): void => {
      socket.destroy()
      resolve(code)
    }
    socket.setTimeout(timeoutMs, () => done(undefined))
    socket.once('data', () => done(undefined))
    socket.once('error', (err: Error & { code?: string }) => done(err.code))
    socket.once('close', () => done(undefined))
  })
}
