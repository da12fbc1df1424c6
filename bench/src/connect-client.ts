import { request as httpsRequest, type Agent } from 'node:https'
import { request as httpRequest } from 'node:http'
import type { PeerCertificate } from 'node:tls'

// A Connect caller as the bench plays it: a leaf certificate for its own service from the agent, the CA
// roots, and Go's check of the server (chain against the roots, then its SPIFFE ID names the service it
// meant to reach). A Connect leaf has no DNS name, so node's hostname check cannot apply.

export interface ConnectCaller {
  /** The caller's own service name, its leaf's SPIFFE `svc`. */
  service: string
  ca: string[]
  cert: string
  key: string
  trustDomain: string
}

/** The caller's TLS options to reach `server` (its service name); without cert and key, a caller with no certificate. */
export interface CallerTls { ca: string[], cert?: string, key?: string, checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined }

async function agentJson<T> (agentUrl: string, path: string): Promise<T> {
  const res = await fetch(`${agentUrl}${path}`)
  /* c8 ignore next -- a -dev agent issues a leaf for any name; if it does not, the run fails, loudly */
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

/** A leaf for `service` and the roots, from the local agent (-dev without ACLs issues any name). */
export async function connectCaller (agentUrl: string, service: string): Promise<ConnectCaller> {
  const [leaf, roots] = await Promise.all([
    agentJson<{ CertPEM: string, PrivateKeyPEM: string }>(agentUrl, `/v1/agent/connect/ca/leaf/${service}`),
    agentJson<{ TrustDomain: string, Roots: Array<{ RootCert: string }> }>(agentUrl, '/v1/agent/connect/ca/roots')
  ])
  return { service, ca: roots.Roots.map((r) => r.RootCert), cert: leaf.CertPEM, key: leaf.PrivateKeyPEM, trustDomain: roots.TrustDomain }
}

/** The SPIFFE service of a Connect leaf's single URI SAN in `trustDomain`, or undefined. */
export function spiffeService (cert: PeerCertificate, trustDomain: string): string | undefined {
  const uris = (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:'))
  if (uris.length !== 1) return undefined
  const m = /^URI:spiffe:\/\/([^/]+)\/ns\/[^/]+\/dc\/[^/]+\/svc\/([^/]+)$/.exec(uris[0]!)
  return m && m[1] === trustDomain ? m[2] : undefined
}

export function callerTls (caller: ConnectCaller, server: string): CallerTls {
  return {
    ca: caller.ca,
    cert: caller.cert,
    key: caller.key,
    checkServerIdentity: (_host, cert) => spiffeService(cert, caller.trustDomain) === server ? undefined : new Error(`the server is not ${server} of ${caller.trustDomain}`)
  }
}

/** The `code` of a JSON error body (ours: FST_REG_CONNECT_FORBIDDEN), or undefined for any other body. */
export function codeOf (body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as unknown
    const code = (parsed as { code?: unknown } | null)?.code
    return typeof code === 'string' ? code : undefined
  } catch {
    return undefined
  }
}

/** What ended a request that got no answer: node's error code (ERR_SSL_…, ECONNRESET) or its message. */
export function errorName (err: Error & { code?: string }): string {
  return err.code ?? err.message
}

/** How one request ended: its status, or the error that ended it (a refused handshake, a reset). */
export interface Outcome {
  status?: number
  /** The body's `code`, when it is JSON with one (ours: FST_REG_CONNECT_FORBIDDEN). */
  code?: string
  error?: string
  /** Whether it went over a connection that had served an earlier request (a keep-alive agent's). */
  reused: boolean
  /** ms from the call to the first connection's handshake (TLS) or connect (plain); undefined when reused. */
  handshakeMs?: number
  /** ms from the call to the answer's end. */
  ms: number
}

/**
 * One GET to 127.0.0.1:`port``path`, over TLS with `tls` or plain HTTP without it; a new connection
 * unless `agent` keeps one alive. Never rejects: an error is an outcome (a denied caller's, for one).
 */
export async function call (port: number, path: string, tls: CallerTls | undefined, agent?: Agent): Promise<Outcome> {
  const t0 = performance.now()
  return await new Promise<Outcome>((resolve) => {
    let handshakeMs: number | undefined
    const opts = { host: '127.0.0.1', port, path, agent: agent ?? false, ...tls }
    const req = tls ? httpsRequest(opts) : httpRequest({ ...opts, agent: false })
    // Only a new connection has a handshake to time; a kept-alive one is already past it.
    req.on('socket', (socket) => {
      if (!req.reusedSocket) socket.once(tls ? 'secureConnect' : 'connect', () => { handshakeMs = performance.now() - t0 })
    })
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const code = codeOf(Buffer.concat(chunks).toString())
        resolve({ status: res.statusCode!, ...(code === undefined ? {} : { code }), reused: req.reusedSocket, handshakeMs, ms: performance.now() - t0 })
      })
      /* c8 ignore next -- an answer broken off mid-body: no server here does that on loopback */
      res.on('error', (err) => resolve({ error: errorName(err), reused: req.reusedSocket, ms: performance.now() - t0 }))
    })
    req.on('error', (err) => resolve({ error: errorName(err), reused: req.reusedSocket, ms: performance.now() - t0 }))
    req.end()
  })
}

/** One outcome in a log line: "200", "403 FST_REG_…", or "error ERR_SSL_…", and whether the connection was reused. */
export function describe (o: Outcome | undefined): string {
  if (o === undefined) return 'nothing'
  const what = o.status === undefined ? `error ${o.error ?? 'unknown'}` : `${o.status}${o.code === undefined ? '' : ` ${o.code}`}`
  return `${what} (${o.reused ? 'kept-alive' : 'new'} connection)`
}
