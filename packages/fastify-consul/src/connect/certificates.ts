import type { ConsulHttp } from '../consul/http.js'
import type { Logger } from '../util/logger.js'
import { blockingLoop, type BlockingLoopTuning } from './blocking-loop.js'
import { parseLeaf, parseRoots, type ConnectLeaf, type ConnectRoots } from './ca-answers.js'
import { ConnectClosedError } from '../errors.js'
import type { SpiffeServiceId } from './spiffe.js'

// The service's Connect certificate and the CA roots, kept fresh by two blocking queries on the local
// agent. The agent renews the leaf before it expires and re-issues it after a CA rotation (spread over
// up to 30 s on 1.8), and either query returns at once with a new index: that is how rotation reaches us.
// Fail static: while the agent cannot be read, the last good pair keeps serving (the peers' check is
// against the roots, which an agent outage does not change) and the loops retry at least every second.

/** What a TLS server or client needs, as one immutable snapshot: a rotation swaps the whole object. */
export interface ConnectTls {
  readonly cert: string
  readonly key: string
  readonly ca: readonly string[]
  readonly serviceURI: string
  readonly identity: SpiffeServiceId
  readonly trustDomain: string
  readonly serial: string
  readonly validAfter: number
  readonly validBefore: number
  readonly activeRootId: string
}

export type CertificatesState = 'starting' | 'live' | 'stale' | 'closed'

export interface RotationChange {
  /** A new leaf certificate (renewal or re-issue after a CA rotation). */
  leaf: boolean
  /** The set of roots or the active root changed. */
  roots: boolean
}

export interface CertificatesListener {
  /** After the first snapshot, each time the leaf or the roots change. */
  rotate?: (tls: ConnectTls, change: RotationChange) => void
  state?: (state: CertificatesState) => void
}

export interface ConnectCertificatesOptions {
  http: ConsulHttp
  log: Logger
  /** The service name the leaf is issued for (its SPIFFE `svc`). */
  service: string
  tuning: BlockingLoopTuning
}

type Part = 'leaf' | 'roots'

export class ConnectCertificates {
  readonly service: string
  /** The first snapshot; rejects with FST_REG_CONNECT_CLOSED only when closed first. */
  readonly ready: Promise<ConnectTls>

  readonly #http: ConsulHttp
  readonly #log: Logger
  readonly #tuning: BlockingLoopTuning
  readonly #abort = new AbortController()
  readonly #listeners = new Set<CertificatesListener>()
  readonly #failing = new Set<Part>()
  #leaf: ConnectLeaf | undefined
  #roots: ConnectRoots | undefined
  #current: ConnectTls | undefined
  #state: CertificatesState = 'starting'
  #staleSince = 0
  #loops: Promise<unknown> | undefined
  #resolve!: (tls: ConnectTls) => void
  #reject!: (err: Error) => void

  constructor (opts: ConnectCertificatesOptions) {
    this.service = opts.service
    this.#http = opts.http
    this.#log = opts.log.child({ connect: opts.service })
    this.#tuning = opts.tuning
    this.ready = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // A holder that never awaits `ready` must not turn close-before-ready into an unhandled rejection.
    this.ready.catch(() => {})
  }

  /** The current snapshot, or undefined before the first leaf and roots arrived. */
  get current (): ConnectTls | undefined {
    return this.#current
  }

  get state (): CertificatesState {
    return this.#state
  }

  /** Starts both loops; idempotent, and a no-op once closed. */
  start (): void {
    if (this.#loops !== undefined || this.#abort.signal.aborted) return
    const leafPath = `/v1/agent/connect/ca/leaf/${encodeURIComponent(this.service)}`
    this.#loops = Promise.all([
      this.#loop('leaf', leafPath, (text) => parseLeaf(text, this.service, leafPath), (leaf) => { this.#leaf = leaf }),
      this.#loop('roots', '/v1/agent/connect/ca/roots', parseRoots, (roots) => { this.#roots = roots })
    ])
  }

  /** Returns the unsubscribe function. */
  subscribe (listener: CertificatesListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Ends both loops (aborting their queries) and resolves once they returned. Idempotent. */
  async close (): Promise<void> {
    if (!this.#abort.signal.aborted) {
      this.#abort.abort()
      this.#reject(new ConnectClosedError(`certificates of ${this.service}`))
      this.#setState('closed')
      this.#listeners.clear()
    }
    await this.#loops
  }

  async #loop<T> (part: Part, path: string, parse: (text: string) => T, keep: (value: T) => void): Promise<void> {
    await blockingLoop({
      ...this.#tuning,
      http: this.#http,
      path,
      signal: this.#abort.signal,
      parse,
      answer: (value) => {
        keep(value)
        this.#failing.delete(part)
        this.#publish()
      },
      failure: (err, failures) => this.#fail(part, err, failures),
      stale: () => this.#current !== undefined
    })
  }

  #publish (): void {
    const leaf = this.#leaf
    const roots = this.#roots
    if (leaf === undefined || roots === undefined) return
    const was = this.#current
    const change: RotationChange = {
      leaf: was === undefined || was.cert !== leaf.cert || was.key !== leaf.key,
      roots: was === undefined || was.activeRootId !== roots.activeRootId || !sameList(was.ca, roots.certs)
    }
    if (change.leaf || change.roots) {
      const tls: ConnectTls = Object.freeze({
        cert: leaf.cert,
        key: leaf.key,
        ca: roots.certs,
        serviceURI: leaf.serviceURI,
        identity: leaf.identity,
        trustDomain: roots.trustDomain,
        serial: leaf.serial,
        validAfter: leaf.validAfter,
        validBefore: leaf.validBefore,
        activeRootId: roots.activeRootId
      })
      this.#current = tls
      const detail = { serial: tls.serial, validBefore: new Date(tls.validBefore).toISOString(), activeRootId: tls.activeRootId, roots: tls.ca.length }
      if (was === undefined) {
        this.#log.info({ ...detail, serviceURI: tls.serviceURI }, 'connect certificates ready')
        this.#resolve(tls)
      } else {
        this.#log.info({ ...detail, ...change }, 'connect certificates rotated')
        this.#emit((l) => l.rotate?.(tls, change))
      }
    }
    if (this.#failing.size === 0) {
      if (this.#state === 'stale') this.#log.info({ outageMs: Math.round(performance.now() - this.#staleSince) }, 'connect certificates: the agent answers again')
      this.#setState('live')
    }
  }

  #fail (part: Part, err: Error, failures: number): void {
    this.#failing.add(part)
    const code = (err as Error & { code?: string }).code
    if (this.#state === 'live') {
      this.#staleSince = performance.now()
      this.#log.warn({ err, code, part, serial: this.#current!.serial }, 'connect certificates: reading the agent failed; serving the last good certificate and roots')
      this.#setState('stale')
    } else if (failures === 0 && this.#state === 'starting') {
      this.#log.warn({ err, code, part }, 'connect certificates: reading the agent failed; retrying with backoff')
    } else {
      this.#log.debug({ err, code, part, failures }, 'connect certificates: reading the agent failed')
    }
  }

  #setState (state: CertificatesState): void {
    if (state === this.#state) return
    this.#state = state
    this.#emit((l) => l.state?.(state))
  }

  #emit (call: (listener: CertificatesListener) => void): void {
    for (const listener of [...this.#listeners]) {
      try {
        call(listener)
      } catch (err) {
        // A throwing consumer must not stop the loops every other consumer (and the server) depends on.
        this.#log.error({ err }, 'connect certificates listener threw')
      }
    }
  }
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}
