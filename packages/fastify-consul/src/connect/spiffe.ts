import type { PeerCertificate } from 'node:tls'
import type { X509Certificate } from 'node:crypto'

// Connect identities: `spiffe://<trust-domain>/ns/<ns>/dc/<dc>/svc/<service>` (Consul 1.8), and with an
// admin partition (current Enterprise) `spiffe://<td>/ap/<partition>/ns/<ns>/dc/<dc>/svc/<service>`.
// Everything here reads what a peer sent us, so it refuses rather than guesses: one verdict with a
// reason an operator can act on, never an exception, and no work proportional to a hostile input
// beyond the size caps below.

/** A SPIFFE ID is at most 2048 bytes (SPIFFE spec, "SPIFFE ID" §2.3); Consul's are about 100. */
export const MAX_URI_LENGTH = 2048
/** A trust domain is a DNS-like name: at most 255 characters (SPIFFE spec §2.1). */
export const MAX_TRUST_DOMAIN_LENGTH = 255
/**
 * The whole subjectAltName text node hands us. A Connect leaf has one URI (~100 characters); 16 KiB
 * leaves room for DNS names a user adds and still bounds the parsing of a certificate built to be huge.
 */
export const MAX_SAN_LENGTH = 16 * 1024

export interface SpiffeServiceId {
  /** The URI as written in the certificate. */
  readonly uri: string
  readonly trustDomain: string
  /** Enterprise admin partition; 'default' when the URI has none (every 1.8 URI). */
  readonly partition: string
  readonly namespace: string
  readonly datacenter: string
  readonly service: string
}

export type Verdict<T> = { readonly ok: true, readonly value: T } | { readonly ok: false, readonly reason: string }

const refuse = (reason: string): Verdict<never> => ({ ok: false, reason })

// Trust domains are lower-case (SPIFFE §2.1); Consul's is `<cluster uuid>.consul`.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/
// Consul names its services, namespaces and datacenters with these characters (its DNS rules allow
// fewer). Percent-escapes, dots-only segments and anything else are refused: `svc/%2e%2e` must not be
// read as some other service by whoever compares names next.
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/
const SERVICE_PATH = /^(?:\/ap\/([^/]+))?\/ns\/([^/]+)\/dc\/([^/]+)\/svc\/([^/]+)$/

/** Parses a Connect service identity. Anything else (an agent's URI, a query string, a port) is refused. */
export function parseServiceId (uri: string): Verdict<SpiffeServiceId> {
  if (uri.length > MAX_URI_LENGTH) return refuse(`URI longer than ${MAX_URI_LENGTH} characters`)
  if (!uri.startsWith('spiffe://')) return refuse(`not a spiffe:// URI: ${excerpt(uri)}`)
  const rest = uri.slice('spiffe://'.length)
  const slash = rest.indexOf('/')
  if (slash < 0) return refuse(`SPIFFE ID without a service path: ${excerpt(uri)}`)
  const trustDomain = rest.slice(0, slash)
  if (trustDomain.length === 0) return refuse('SPIFFE ID with an empty trust domain')
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH) return refuse(`trust domain longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`)
  // Rejects userinfo (`@`), ports (`:`) and upper case: none of them belongs in a trust domain.
  if (!TRUST_DOMAIN.test(trustDomain)) return refuse(`invalid trust domain: ${excerpt(trustDomain)}`)
  const path = SERVICE_PATH.exec(rest.slice(slash))
  if (path === null) return refuse(`not a Connect service identity (…/ns/<ns>/dc/<dc>/svc/<service>): ${excerpt(uri)}`)
  const [, partition = 'default', namespace, datacenter, service] = path as unknown as [string, string | undefined, string, string, string]
  for (const [what, value] of [['partition', partition], ['namespace', namespace], ['datacenter', datacenter], ['service', service]] as const) {
    if (!SEGMENT.test(value)) return refuse(`invalid ${what} in SPIFFE ID: ${excerpt(value)}`)
  }
  return { ok: true, value: { uri, trustDomain, partition, namespace, datacenter, service } }
}

/**
 * The URI entries of node's subjectAltName text (`DNS:a, URI:spiffe://…, IP Address:…`). Node quotes a
 * value that holds a comma, quote, backslash or control character as a JSON string (CVE-2021-44532),
 * sometimes after a prefix (`othername:XmppAddr::"…"`), so entries are split only on a `, ` outside
 * quotes: a value crafted as `x, URI:spiffe://…` stays inside its entry and cannot pose as another one.
 */
export function uriSans (subjectAltName: string | undefined): Verdict<string[]> {
  if (subjectAltName === undefined || subjectAltName === '') return { ok: true, value: [] }
  if (subjectAltName.length > MAX_SAN_LENGTH) return refuse(`subjectAltName longer than ${MAX_SAN_LENGTH} characters`)
  const uris: string[] = []
  let start = 0
  for (let i = 0; i <= subjectAltName.length; i++) {
    if (subjectAltName[i] === '"') {
      i = quotedEnd(subjectAltName, i)
      if (i < 0) return refuse('malformed subjectAltName (unterminated quoted value)')
      i--
      continue
    }
    if (i < subjectAltName.length && !subjectAltName.startsWith(', ', i)) continue
    const entry = subjectAltName.slice(start, i)
    start = i + 2
    i++
    if (!entry.startsWith('URI:')) continue
    const raw = entry.slice(4)
    if (!raw.startsWith('"')) {
      uris.push(raw)
      continue
    }
    // A quoted URI must be one whole JSON string; its content then fails parseServiceId's character rules.
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {
      return refuse('malformed subjectAltName (bad quoted URI)')
    }
    uris.push(value as string)
  }
  return { ok: true, value: uris }
}

/** The index just past the JSON string that starts at `start` (a `"`), or -1. */
function quotedEnd (s: string, start: number): number {
  for (let j = start + 1; j < s.length; j++) {
    if (s[j] === '\\') j++
    else if (s[j] === '"') return j + 1
  }
  return -1
}

/** What node gives for a peer: `socket.getPeerCertificate()`, or `getPeerX509Certificate()`. */
export type PeerCertificateLike = Pick<PeerCertificate, 'subjectaltname'> | Pick<X509Certificate, 'subjectAltName'>

/**
 * The Connect identity of a peer whose chain the TLS layer has already verified against our roots:
 * exactly one URI SAN, a Connect service identity, in our trust domain. Consul's own authorize endpoint
 * does not compare trust domains (1.8 answers for `spiffe://anything.consul/…`), so this is where a
 * certificate from another cluster's CA that we happen to trust is stopped.
 */
export function peerServiceId (cert: PeerCertificateLike, trustDomain: string): Verdict<SpiffeServiceId> {
  const san = 'subjectAltName' in cert ? cert.subjectAltName : cert.subjectaltname
  const uris = uriSans(san)
  if (!uris.ok) return uris
  if (uris.value.length === 0) return refuse('certificate has no URI SAN (not a Connect certificate)')
  if (uris.value.length > 1) return refuse(`certificate has ${uris.value.length} URI SANs; a Connect certificate has exactly one`)
  const id = parseServiceId(uris.value[0]!)
  if (!id.ok) return id
  if (id.value.trustDomain !== trustDomain.toLowerCase()) return refuse(`trust domain ${excerpt(id.value.trustDomain)} is not ours (${trustDomain})`)
  return id
}

/** Enough of a hostile value to recognise it in a log line, never all of it. */
function excerpt (value: string): string {
  return JSON.stringify(value.length > 96 ? `${value.slice(0, 96)}…` : value)
}
