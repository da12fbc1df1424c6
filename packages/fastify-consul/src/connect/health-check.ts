import type { CertificatesState, ConnectTls } from './certificates.js'

// What Connect adds to @reg/fastify-health's readiness (issue #24: "the agent going away keeps the
// current certificates serving, and the plugin reports this in /health as a warning"). Fail static: the
// last good leaf and roots keep serving while the agent cannot be read, so this is never critical — an
// instance that can still serve must not be pulled because its agent is away. An operator reading
// /health learns why rotations stop, and until when the leaf it serves is valid.

/** The name of the check the plugin adds under `connect` when @reg/fastify-health is registered first. */
export const CONNECT_CHECK = 'consul connect'

interface CertificatesView {
  readonly state: CertificatesState
  readonly current: ConnectTls | undefined
}

/** Warning while the certificates are stale (the agent does not answer); passing (undefined) otherwise. */
export function connectCheck (certs: CertificatesView, now: () => number = Date.now): () => { status: 'warning', output: string } | undefined {
  return () => {
    const tls = certs.current
    // 'stale' only ever follows a first good pair (ConnectCertificates keeps `current` from then on).
    if (certs.state !== 'stale' || tls === undefined) return undefined
    const until = new Date(tls.validBefore).toISOString()
    const validity = tls.validBefore > now() ? `valid until ${until}` : `EXPIRED at ${until}: callers refuse it until the agent answers`
    return { status: 'warning', output: `certificates not refreshed: the local Consul agent does not answer; serving the last leaf of ${tls.identity.service} (${validity})` }
  }
}
