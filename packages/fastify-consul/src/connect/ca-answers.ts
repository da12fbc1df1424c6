import { createPrivateKey, X509Certificate } from 'node:crypto'
import { ConnectBadResponseError } from '../errors.js'
import { parseServiceId, uriSans, type SpiffeServiceId } from './spiffe.js'

// What the agent's Connect CA endpoints answer, checked before any of it can reach a TLS context: the
// leaf (`/v1/agent/connect/ca/leaf/<service>`) and the roots (`/v1/agent/connect/ca/roots`). Pure.

export interface ConnectLeaf {
  /** PEM: the leaf, then any intermediate the agent appends (a cross-signed root after a rotation). */
  readonly cert: string
  readonly key: string
  readonly serviceURI: string
  readonly identity: SpiffeServiceId
  /** As Consul writes it: colon-separated hex. */
  readonly serial: string
  /** Epoch ms. */
  readonly validAfter: number
  /** Epoch ms. */
  readonly validBefore: number
}

export interface ConnectRoots {
  /** `<cluster uuid>.consul`: the only trust domain a peer may come from. */
  readonly trustDomain: string
  readonly activeRootId: string
  /** Every root (active and rotated-out, in the agent's order): a peer's leaf may still be signed by an old one. */
  readonly ids: readonly string[]
  /** PEM of each root, as `ca` takes it. */
  readonly certs: readonly string[]
}

function json (text: string, what: string): Record<string, unknown> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new ConnectBadResponseError(what, 'not JSON')
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConnectBadResponseError(what, 'not an object')
  return raw as Record<string, unknown>
}

function str (o: Record<string, unknown>, field: string, what: string): string {
  const v = o[field]
  if (typeof v !== 'string' || v === '') throw new ConnectBadResponseError(what, `${field} is not a non-empty string`)
  return v
}

function time (o: Record<string, unknown>, field: string, what: string): number {
  const ms = Date.parse(str(o, field, what))
  if (!Number.isFinite(ms)) throw new ConnectBadResponseError(what, `${field} is not a time`)
  return ms
}

function x509 (pem: string, what: string, field: string): X509Certificate {
  try {
    return new X509Certificate(pem)
  } catch {
    throw new ConnectBadResponseError(what, `${field} is not a PEM certificate`)
  }
}

/**
 * `GET /v1/agent/connect/ca/leaf/<service>`, checked before it can reach `setSecureContext`: a pair that
 * does not match, or a certificate for another identity, would otherwise fail every handshake after
 * a rotation, and the previous good pair is what keeps serving instead.
 */
export function parseLeaf (text: string, service: string, what = 'the leaf certificate'): ConnectLeaf {
  const o = json(text, what)
  const cert = str(o, 'CertPEM', what)
  const key = str(o, 'PrivateKeyPEM', what)
  const serviceURI = str(o, 'ServiceURI', what)
  const x = x509(cert, what, 'CertPEM')
  let matches: boolean
  try {
    matches = x.checkPrivateKey(createPrivateKey(key))
  } catch {
    throw new ConnectBadResponseError(what, 'PrivateKeyPEM is not a private key')
  }
  if (!matches) throw new ConnectBadResponseError(what, 'PrivateKeyPEM does not match CertPEM')
  const id = parseServiceId(serviceURI)
  if (!id.ok) throw new ConnectBadResponseError(what, `ServiceURI: ${id.reason}`)
  if (id.value.service !== service) throw new ConnectBadResponseError(what, `issued to service ${JSON.stringify(id.value.service)}, not ${JSON.stringify(service)}`)
  const sans = uriSans(x.subjectAltName)
  if (!sans.ok || sans.value.length !== 1 || sans.value[0] !== serviceURI) throw new ConnectBadResponseError(what, 'the certificate\'s URI SAN is not ServiceURI')
  return {
    cert,
    key,
    serviceURI,
    identity: id.value,
    serial: str(o, 'SerialNumber', what),
    validAfter: time(o, 'ValidAfter', what),
    validBefore: time(o, 'ValidBefore', what)
  }
}

/** `GET /v1/agent/connect/ca/roots`: every root, and the active one among them. */
export function parseRoots (text: string): ConnectRoots {
  const what = 'the Connect CA roots'
  const o = json(text, what)
  const trustDomain = str(o, 'TrustDomain', what)
  const activeRootId = str(o, 'ActiveRootID', what)
  const list = o.Roots
  if (!Array.isArray(list) || list.length === 0) throw new ConnectBadResponseError(what, 'Roots is not a non-empty array')
  const ids: string[] = []
  const certs: string[] = []
  for (const root of list) {
    if (typeof root !== 'object' || root === null) throw new ConnectBadResponseError(what, 'a root is not an object')
    const r = root as Record<string, unknown>
    ids.push(str(r, 'ID', what))
    const pem = str(r, 'RootCert', what)
    x509(pem, what, 'RootCert')
    certs.push(pem)
  }
  if (!ids.includes(activeRootId)) throw new ConnectBadResponseError(what, 'ActiveRootID is not among Roots')
  return { trustDomain: trustDomain.toLowerCase(), activeRootId, ids, certs }
}
