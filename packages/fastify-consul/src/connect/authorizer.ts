import type { ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { httpError, type ConsulHttp } from '../consul/http.js'
import { fullJitter } from '../util/backoff.js'
import type { Logger } from '../util/logger.js'
import { blockingLoop, STALE_RETRY_CAP, type BlockingLoopTuning } from './blocking-loop.js'
import { ConnectAuthorizeUnavailableError, ConnectBadResponseError, ConnectForbiddenError, ConnectUnauthenticatedError } from '../errors.js'
import { REFUSAL_LOG_WINDOW, RefusalLog, remoteAddressOf } from './refusal-log.js'
import { peerServiceId, type SpiffeServiceId, type Verdict } from './spiffe.js'

// Inbound authorization of a peer the TLS layer has verified: which service it is (its one SPIFFE URI, in
// our trust domain), and whether intentions let it call us (`POST /v1/agent/connect/authorize`).
//
// Answers are cached per caller URI, and the cache follows intention changes through a blocking query on
// `/v1/connect/intentions`: any new index flushes every decision (a generation bump), so a change reaches
// the next request in the time the agent takes to tell us, milliseconds, instead of a TTL's worth; an idle
// service asks the agent nothing. The list is only a change signal (with ACLs it comes back filtered, and
// its index still moves). Two guards keep the ≤ 1 s promise when the signal is missing or early:
// - without a live watch (token without intentions:read, agent away) a decision is re-asked after `ttl`;
// - the agent answers authorize from its own cache, refreshed by its own blocking query on the same
//   change, and ours may return first: decisions fetched within `settle` ms of a flush are flushed again.
//
// A denied caller gets a coded 403 (FST_REG_CONNECT_FORBIDDEN), not a closed connection: a deny is an
// answer, and a caller's dispatcher must neither retry it on another instance nor eject this one for it,
// which is what a reset connection would make it do. It is logged once per caller, not per request.
//
// Live connections follow intentions too (Consul's documentation says a change does not affect them, and
// Go's package does not re-check them): each verified connection is remembered under its caller, and when
// the intentions change (once the agent had time to see it, at the `settle` mark) every caller with a live
// connection is asked again. A caller now denied loses them: an idle one is destroyed at once, a busy one
// answers its in-flight request with `Connection: close` and is closed after it. This costs nothing per
// request: one entry per connection, and one authorize per connected caller per intentions change.

export interface AuthorizerTuning extends BlockingLoopTuning {
  /** ms a decision is trusted without a live intentions watch. */
  ttl: number
  /** ms after an intentions change during which fetched decisions are flushed once more. */
  settle: number
  /** ms a request waits for the agent's authorize answer. */
  authorizeTimeout: number
  /** Caller URIs remembered at most (the least recently asked is dropped first). Peers are CA-verified services, so this is a bound, not a working size. */
  maxCallers: number
}

/** Where the trust domain comes from: ConnectCertificates (its roots), structurally. */
export interface TrustDomainSource {
  readonly current: { readonly trustDomain: string } | undefined
}

export interface ConnectAuthorizerOptions {
  http: ConsulHttp
  log: Logger
  /** Our service name: the `Target` of every authorize. */
  target: string
  trust: TrustDomainSource
  tuning: AuthorizerTuning
}

export interface Decision {
  readonly authorized: boolean
  /** Consul's reason ("Matched intention: DENY …", "ACLs disabled, access is allowed by default"). */
  readonly reason: string
}

export type IntentionsWatchState = 'starting' | 'live' | 'stale' | 'closed'

interface Entry extends Decision {
  readonly generation: number
  /** performance.now() when asked. */
  readonly at: number
}

interface Peer {
  readonly id: SpiffeServiceId
  readonly serial: string
}

/** A caller's open connections, so that a deny can reach them. */
interface Connected extends Peer {
  readonly sockets: Set<TLSSocket>
}

export class ConnectAuthorizer {
  readonly target: string

  readonly #http: ConsulHttp
  readonly #log: Logger
  readonly #trust: TrustDomainSource
  readonly #tuning: AuthorizerTuning
  readonly #abort = new AbortController()
  readonly #cache = new Map<string, Entry>()
  readonly #pending = new Map<string, Promise<Entry | undefined>>()
  /** One identity per TLS connection: the certificate cannot change on a socket. */
  readonly #peers = new WeakMap<TLSSocket, Verdict<Peer>>()
  readonly #denied = new RefusalLog({ window: Infinity })
  readonly #unauthenticated = new RefusalLog({ window: REFUSAL_LOG_WINDOW })
  #generation = 0
  #watch: IntentionsWatchState = 'starting'
  #intentionsIndex: number | undefined
  #settleTimer: NodeJS.Timeout | undefined
  #loop: Promise<void> | undefined
  #failures = 0
  #retryAt = 0
  readonly #connected = new Map<string, Connected>()
  /** While the intentions watch is not live: live connections are re-checked every `ttl` instead. */
  #sweepTimer: NodeJS.Timeout | undefined

  constructor (opts: ConnectAuthorizerOptions) {
    this.target = opts.target
    this.#http = opts.http
    this.#log = opts.log.child({ connect: opts.target })
    this.#trust = opts.trust
    this.#tuning = opts.tuning
  }

  /** The intentions watch: 'live' while changes reach the cache through it. */
  get watchState (): IntentionsWatchState {
    return this.#watch
  }

  /** Starts the intentions watch; idempotent, and a no-op once closed. */
  start (): void {
    if (this.#loop !== undefined || this.#abort.signal.aborted) return
    this.#loop = blockingLoop({
      ...this.#tuning,
      http: this.#http,
      path: '/v1/connect/intentions',
      signal: this.#abort.signal,
      parse: parseIntentions,
      answer: (_value, index) => this.#intentions(index),
      failure: (err, failures) => this.#watchFailed(err, failures),
      stale: () => this.#watch !== 'starting'
    })
  }

  async close (): Promise<void> {
    if (!this.#abort.signal.aborted) {
      this.#abort.abort()
      clearTimeout(this.#settleTimer)
      clearInterval(this.#sweepTimer)
      this.#watch = 'closed'
    }
    await this.#loop
  }

  /**
   * The gate for one request on a TLS connection: undefined when a cached decision allows it (the
   * common case, no promise), otherwise a promise that resolves (allowed) or rejects with a coded error
   * (401 FST_REG_CONNECT_UNAUTHENTICATED, 403 FST_REG_CONNECT_FORBIDDEN, 503
   * FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE), which Fastify turns into that status as it is.
   */
  check (socket: TLSSocket): Promise<void> | undefined {
    let peer = this.#peers.get(socket)
    if (peer === undefined) {
      peer = this.#identify(socket)
      this.#peers.set(socket, peer)
      if (peer.ok) this.#remember(socket, peer.value)
    }
    if (!peer.ok) return Promise.reject(new ConnectUnauthenticatedError(peer.reason))
    const entry = this.#cache.get(peer.value.id.uri)
    if (entry !== undefined && this.#fresh(entry)) return entry.authorized ? undefined : Promise.reject(this.#forbidden(peer.value.id))
    return this.decide(peer.value.id, peer.value.serial).then((d) => {
      if (!d.authorized) throw this.#forbidden(peer.value.id)
    })
  }

  /**
   * The decision for a verified identity: cached, asked, or (agent away) the last one known. Rejects with
   * FST_REG_CONNECT_AUTHORIZE_UNAVAILABLE only for a caller we have never decided on.
   */
  async decide (id: SpiffeServiceId, serial: string): Promise<Decision> {
    const entry = this.#cache.get(id.uri)
    if (entry !== undefined && this.#fresh(entry)) return entry
    if (entry !== undefined && this.#failures > 0) {
      // Fail static: while the agent does not answer, a caller keeps the last decision we had for it,
      // and only a background ask (one per caller, paced by the backoff) finds out when it is back. Not
      // awaited, and it cannot reject: #authorize turns every failure into `undefined`.
      this.#ask(id, serial)
      return entry
    }
    const fresh = await this.#ask(id, serial)
    if (fresh !== undefined) return fresh
    if (entry !== undefined) return entry
    // A caller we have never decided on, and the agent cannot say: refused. Allowing it would make every
    // deny intention only as strong as the agent's availability, and anyone able to stall the agent could
    // step around them; refusing costs only callers new since the outage began (those already decided
    // keep their decision). Go's connect package also refuses when authorize fails. A 503, not a 403:
    // another instance, whose agent answers, may accept it.
    throw new ConnectAuthorizeUnavailableError(id.service)
  }

  #fresh (entry: Entry): boolean {
    if (entry.generation !== this.#generation) return false
    return this.#watch === 'live' || performance.now() - entry.at < this.#tuning.ttl
  }

  #identify (socket: TLSSocket): Verdict<Peer> {
    const verdict = this.#peer(socket)
    if (!verdict.ok) {
      const address = remoteAddressOf(socket)
      this.#unauthenticated.once(`${address} ${verdict.reason}`, () => {
        this.#log.warn({ remoteAddress: address, reason: verdict.reason }, `connect: caller refused: ${verdict.reason}`)
      })
    }
    return verdict
  }

  #peer (socket: TLSSocket): Verdict<Peer> {
    // With the server options of server-tls.ts an unverified peer never completes the handshake; this is
    // for a server built otherwise (a health route that accepts callers without a certificate, say).
    if (!socket.authorized) return { ok: false, reason: `certificate not verified by the Connect CA (${String(socket.authorizationError ?? 'the server did not ask for one')})` }
    const trustDomain = this.#trust.current?.trustDomain
    if (trustDomain === undefined) return { ok: false, reason: 'our Connect roots are not known yet' }
    const cert = socket.getPeerCertificate()
    const id = peerServiceId(cert, trustDomain)
    if (!id.ok) return id
    return { ok: true, value: { id: id.value, serial: consulSerial(cert.serialNumber) } }
  }

  #remember (socket: TLSSocket, peer: Peer): void {
    let connected = this.#connected.get(peer.id.uri)
    if (connected === undefined) {
      connected = { ...peer, sockets: new Set() }
      this.#connected.set(peer.id.uri, connected)
    }
    const entry = connected
    entry.sockets.add(socket)
    socket.once('close', () => {
      entry.sockets.delete(socket)
      if (entry.sockets.size === 0 && this.#connected.get(peer.id.uri) === entry) this.#connected.delete(peer.id.uri)
    })
  }

  /** Asks again for every caller with an open connection, and closes those of callers now denied. */
  #sweep (): void {
    for (const connected of [...this.#connected.values()]) {
      this.decide(connected.id, connected.serial).then((d) => {
        if (!d.authorized) this.#disconnect(connected)
      }, () => {
        // The agent cannot say (a caller never decided on): fail static, as for its requests. Nothing else rejects.
      })
    }
  }

  #disconnect (connected: Connected): void {
    // Possibly none left: they may have closed while the authorize was on its way (the line then says 0 and 0).
    const sockets = [...connected.sockets]
    let busy = 0
    for (const socket of sockets) {
      // node's http server keeps the response in progress here (its own closeIdleConnections() reads it
      // the same way); none, or a finished one, means the connection is idle between requests.
      const res = (socket as TLSSocket & { _httpMessage?: ServerResponse | null })._httpMessage
      if (res === undefined || res === null || res.writableFinished) {
        socket.destroy()
        continue
      }
      busy++
      // The caller learns not to send another request on it, and node closes it after this response.
      if (!res.headersSent) res.setHeader('connection', 'close')
      res.once('close', () => socket.destroySoon())
    }
    this.#log.info({ caller: connected.id.uri, idle: sockets.length - busy, busy }, `connect: ${connected.id.service} is now denied; its open connections are closed`)
  }

  #forbidden (id: SpiffeServiceId): Error {
    return new ConnectForbiddenError(id.service, this.target)
  }

  /** One authorize in flight per caller; undefined when it failed (or we are backing off after a failure). */
  async #ask (id: SpiffeServiceId, serial: string): Promise<Entry | undefined> {
    const pending = this.#pending.get(id.uri)
    if (pending !== undefined) return await pending
    if (performance.now() < this.#retryAt) return undefined
    const asking = this.#authorize(id, serial).finally(() => this.#pending.delete(id.uri))
    this.#pending.set(id.uri, asking)
    return await asking
  }

  async #authorize (id: SpiffeServiceId, serial: string): Promise<Entry | undefined> {
    // The generation before asking: a flush while the answer is on its way makes that answer stale at once.
    const generation = this.#generation
    const at = performance.now()
    let decision: Decision
    try {
      const res = await this.#http.send({
        method: 'POST',
        path: '/v1/agent/connect/authorize',
        body: { Target: this.target, ClientCertURI: id.uri, ClientCertSerial: serial },
        // No abort signal: an ask in flight at close() ends within authorizeTimeout on its own, and
        // aborting it would only log a failure that is not one.
        timeout: this.#tuning.authorizeTimeout
      })
      if (res.status !== 200) throw httpError('POST /v1/agent/connect/authorize', res)
      decision = parseDecision(res.text)
    } catch (err) {
      this.#authorizeFailed(err as Error & { code?: string })
      return undefined
    }
    if (this.#failures > 0) {
      this.#log.info({ failures: this.#failures }, 'connect: the agent answers authorize again')
      this.#failures = 0
      this.#retryAt = 0
    }
    const entry: Entry = { ...decision, generation, at }
    this.#store(id, entry)
    return entry
  }

  #authorizeFailed (err: Error & { code?: string }): void {
    if (this.#failures === 0) {
      this.#log.warn({ err, code: err.code, cached: this.#cache.size }, 'connect: authorize failed; callers already decided keep their decision, new callers are refused (503) until the agent answers')
    }
    this.#retryAt = performance.now() + fullJitter(this.#failures++, { base: this.#tuning.backoff.base, cap: STALE_RETRY_CAP }, this.#tuning.random)
  }

  #store (id: SpiffeServiceId, entry: Entry): void {
    const was = this.#cache.get(id.uri)
    this.#cache.delete(id.uri)
    this.#cache.set(id.uri, entry)
    if (this.#cache.size > this.#tuning.maxCallers) this.#cache.delete(this.#cache.keys().next().value!)
    if (entry.authorized) {
      this.#denied.forget(id.uri)
      if (was !== undefined && !was.authorized) this.#log.info({ caller: id.uri }, `connect: ${id.service} is allowed again`)
      return
    }
    this.#denied.once(id.uri, () => this.#log.warn({ caller: id.uri, reason: entry.reason }, `connect: ${id.service} denied by intentions (logged once per caller)`))
  }

  #intentions (index: number): void {
    if (this.#watch === 'stale') {
      // Changes made while we could not watch are unknown: treat the return as one.
      this.#log.info('connect: intentions watch is back')
      this.#flush()
    } else if (this.#intentionsIndex !== undefined && index !== this.#intentionsIndex) {
      this.#flush()
    }
    this.#intentionsIndex = index
    this.#watch = 'live'
    clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
  }

  #flush (): void {
    this.#generation++
    this.#log.debug({ generation: this.#generation }, 'connect: intentions changed; cached decisions flushed')
    if (this.#settleTimer === undefined) {
      // By the settle mark the agent's authorize answers follow the change: live connections are judged then.
      this.#settleTimer = setTimeout(() => {
        this.#generation++
        this.#sweep()
      }, this.#tuning.settle)
      this.#settleTimer.unref()
    } else {
      this.#settleTimer.refresh()
    }
  }

  #watchFailed (err: Error & { code?: string }, failures: number): void {
    if (this.#sweepTimer === undefined) {
      // Without the change signal, decisions are re-asked after `ttl`: live connections are too.
      this.#sweepTimer = setInterval(() => this.#sweep(), this.#tuning.ttl)
      this.#sweepTimer.unref()
    }
    if (this.#watch === 'live') {
      this.#log.warn({ err, code: err.code, ttl: this.#tuning.ttl }, `connect: intentions watch failed; decisions are re-asked after ${this.#tuning.ttl} ms until it is back`)
      this.#watch = 'stale'
    } else if (failures === 0 && this.#watch === 'starting') {
      this.#log.warn({ err, code: err.code, ttl: this.#tuning.ttl }, `connect: intentions watch failed (intentions:read?); decisions are re-asked after ${this.#tuning.ttl} ms`)
    }
  }
}

/** The list is a change signal only; it must still be the list, or the index means nothing. */
export function parseIntentions (text: string): void {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new ConnectBadResponseError('GET /v1/connect/intentions', 'not JSON')
  }
  if (!Array.isArray(raw)) throw new ConnectBadResponseError('GET /v1/connect/intentions', 'not an array')
}

export function parseDecision (text: string): Decision {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new ConnectBadResponseError('POST /v1/agent/connect/authorize', 'not JSON')
  }
  const o = raw as { Authorized?: unknown, Reason?: unknown } | null
  if (typeof o?.Authorized !== 'boolean') throw new ConnectBadResponseError('POST /v1/agent/connect/authorize', 'Authorized is not a boolean')
  return { authorized: o.Authorized, reason: typeof o.Reason === 'string' ? o.Reason.slice(0, 512) : '' }
}

/** Node's `serialNumber` ("0B", "1A2B…") in Consul's form ("0b", "1a:2b:…"). */
export function consulSerial (hex: string | undefined): string {
  const h = (hex ?? '').toLowerCase()
  const even = h.length % 2 === 0 ? h : `0${h}`
  return even.match(/../g)?.join(':') ?? ''
}
