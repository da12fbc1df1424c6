import { EventEmitter } from 'node:events'
import { blockingParams, nextIndex, requestTimeout } from '../consul/blocking-query.js'
import { httpError, type ConsulHttp } from '../consul/http.js'
import { fullJitter } from '../util/backoff.js'
import type { Logger } from '../util/logger.js'
import { pause } from '../util/pause.js'
import type { LeaderSettings } from './options.js'
import { createSession, destroySession, renewSession } from './session.js'

/** `fastify.consul.leader(key)`: one contender for one key. */
export interface LeaderHandle {
  readonly key: string
  /** True only while this process holds the key with a session it has renewed within the TTL. */
  readonly isLeader: boolean
  on (event: 'elected', listener: () => void): this
  /** `reason` says why: released, session lost, not renewed within the TTL, key taken, Consul unreachable. */
  on (event: 'lost', listener: (reason: string) => void): this
  off (event: 'elected', listener: () => void): this
  off (event: 'lost', listener: (reason: string) => void): this
  /** Steps down at once (the key is released, so a follower takes over without LockDelay) and stops contending. Idempotent. */
  release (): Promise<void>
}

/** Blocking-query wait on the key; the session's own TTL is what bounds how stale a leader can be. */
const WAIT = 55_000
/** Between two attempts after a failure, or when a free key is refused (its LockDelay runs). */
const RETRY = { base: 250, cap: 2000 }

interface KvLock { session: string | undefined, index: number | undefined, exists: boolean }

/**
 * Leader election as Consul's Go `api.Lock` does it: a session with a TTL renewed at TTL/2, `?acquire=`
 * on the key, and a blocking query on the key to step up when it is released. The safety rule: we
 * call ourselves leader only while we could not have lost the session. Consul keeps a session at least
 * TTL after a renewal it received, and we count the TTL from when we *sent* the renewal, so we step
 * down first; LockDelay then keeps every other contender out for a while longer. Any doubt (the key's
 * holder changed, the session is unknown, the agent cannot be read) steps down at once.
 */
export class LeaderElection extends EventEmitter implements LeaderHandle {
  readonly key: string
  readonly #http: ConsulHttp
  readonly #log: Logger
  readonly #s: LeaderSettings
  readonly #path: string
  readonly #stop = new AbortController()
  #round = new AbortController()
  #session: string | undefined
  #leader = false
  #renewTimer: NodeJS.Timeout | undefined
  #deadline: NodeJS.Timeout | undefined
  #loop: Promise<void>
  #released: Promise<void> | undefined

  constructor (opts: { http: ConsulHttp, log: Logger, settings: LeaderSettings }) {
    super()
    this.key = opts.settings.key
    this.#http = opts.http
    this.#s = opts.settings
    this.#log = opts.log.child({ leader: this.key })
    this.#path = `/v1/kv/${this.key.split('/').map(encodeURIComponent).join('/')}`
    this.#loop = this.#run()
  }

  get isLeader (): boolean {
    return this.#leader
  }

  async #run (): Promise<void> {
    const stop = this.#stop.signal
    let failures = 0
    while (!stop.aborted) {
      this.#round = new AbortController()
      const signal = AbortSignal.any([stop, this.#round.signal])
      try {
        this.#session ??= await this.#createSession(signal)
        if (await this.#acquire(this.#session, signal)) {
          this.#elected()
          await this.#holdWhileOurs(this.#session, signal)
        } else {
          await this.#waitForRelease(signal)
        }
        failures = 0
      } catch (err) {
        if (stop.aborted) break
        this.#stepDown('Consul unreachable or refused a lock call')
        this.#log.debug({ err, failures }, 'leader election call failed')
        await pause(fullJitter(failures++, RETRY), stop)
      }
    }
  }

  async #createSession (signal: AbortSignal): Promise<string> {
    const id = await createSession(this.#http, this.#s, signal)
    this.#renewedAt(performance.now())
    this.#log.debug({ session: id }, 'leader session created')
    return id
  }

  /** A renewal sent at `sentAt` succeeded (or the session was created then): plan the next, move the deadline. */
  #renewedAt (sentAt: number): void {
    clearTimeout(this.#renewTimer)
    this.#renewTimer = setTimeout(() => { this.#renew() }, this.#s.ttl / 2)
    this.#renewTimer.unref()
    clearTimeout(this.#deadline)
    this.#deadline = setTimeout(() => this.#sessionDoubt('session not renewed within its TTL'), Math.max(0, sentAt + this.#s.ttl - performance.now()))
    this.#deadline.unref()
  }

  #renew (): void {
    const id = this.#session
    /* c8 ignore next -- a renewal that failed just before a session doubt or release() re-arms once; nothing to renew then */
    if (id === undefined || this.#stop.signal.aborted) return
    const sentAt = performance.now()
    renewSession(this.#http, id).then((alive) => {
      if (this.#session !== id) return
      if (alive) {
        this.#renewedAt(sentAt)
      } else {
        this.#sessionDoubt('session lost (expired, destroyed or the agent was wiped)')
      }
    }, (err: Error) => {
      // Keep trying until the deadline decides: a blip in the network is not a lost session.
      this.#log.debug({ err }, 'leader session renewal failed')
      this.#renewTimer = setTimeout(() => { this.#renew() }, Math.min(1000, this.#s.ttl / 4))
      this.#renewTimer.unref()
    })
  }

  /** The session may be gone: step down now, forget it, and start a new round with a new session. */
  #sessionDoubt (reason: string): void {
    /* c8 ignore next -- release() clears the deadline; a renewal answer racing it is dropped here */
    if (this.#stop.signal.aborted) return
    this.#stepDown(reason)
    this.#session = undefined
    clearTimeout(this.#renewTimer)
    clearTimeout(this.#deadline)
    this.#round.abort()
  }

  async #acquire (session: string, signal: AbortSignal): Promise<boolean> {
    const res = await this.#http.send({ method: 'PUT', path: this.#path, query: { acquire: session }, body: this.#s.value, signal })
    if (res.status === 500 && /invalid session|session.*not found/i.test(res.text)) {
      this.#sessionDoubt('session lost (Consul no longer knows it)')
      return false
    }
    if (res.status !== 200) throw httpError(`PUT ${this.#path}?acquire`, res)
    return res.text.trim() === 'true'
  }

  async #read (index: number, signal: AbortSignal): Promise<KvLock> {
    const res = await this.#http.send({ path: this.#path, query: blockingParams(index, WAIT), timeout: requestTimeout(WAIT), signal })
    if (res.status === 404) return { session: undefined, index: res.index, exists: false }
    if (res.status !== 200) throw httpError(`GET ${this.#path}`, res)
    const [entry] = JSON.parse(res.text) as Array<{ Session?: string }>
    return { session: entry?.Session, index: res.index, exists: true }
  }

  /** Returns when the key is no longer held by `session`; throws (and so steps down) when it cannot tell. */
  async #holdWhileOurs (session: string, signal: AbortSignal): Promise<void> {
    let index = 0
    for (;;) {
      const lock = await this.#read(index, signal)
      if (lock.session !== session) {
        this.#stepDown(lock.exists ? 'the key is held by another session or was released' : 'the key was deleted')
        return
      }
      index = nextIndex(index, lock.index)
    }
  }

  /** Returns when the key is free (released, expired, deleted): time to try again. */
  async #waitForRelease (signal: AbortSignal): Promise<void> {
    let index = 0
    for (;;) {
      const lock = await this.#read(index, signal)
      if (lock.session === undefined) {
        // Free but refused: the last holder's session was invalidated and its LockDelay is running.
        if (index === 0) await pause(fullJitter(1, RETRY), signal)
        return
      }
      index = nextIndex(index, lock.index)
    }
  }

  #elected (): void {
    // Only called after an acquire, which follows a step-down or the start: never while leading.
    this.#leader = true
    this.#log.info({ session: this.#session }, 'elected leader')
    this.#emit('elected')
  }

  #stepDown (reason: string): void {
    if (!this.#leader) return
    this.#leader = false
    this.#log.warn({ reason }, 'no longer the leader')
    this.#emit('lost', reason)
  }

  #emit (event: 'elected' | 'lost', ...args: unknown[]): void {
    try {
      this.emit(event, ...args)
    } catch (err) {
      // A throwing listener must not stop the election loop.
      this.#log.error({ err, event }, 'leader listener threw')
    }
  }

  release (): Promise<void> {
    this.#released ??= this.#release()
    return this.#released
  }

  async #release (): Promise<void> {
    this.#stop.abort()
    clearTimeout(this.#renewTimer)
    clearTimeout(this.#deadline)
    await this.#loop
    const wasLeader = this.#leader
    this.#stepDown('released')
    const session = this.#session
    this.#session = undefined
    if (session === undefined) return
    try {
      // Release first: a key freed with ?release= is free at once; destroying a holding session would
      // start its LockDelay, and the rolling restart would wait for it.
      if (wasLeader) await this.#http.ok({ method: 'PUT', path: this.#path, query: { release: session }, timeout: 2000 })
      await destroySession(this.#http, session)
    } catch (err) {
      this.#log.warn({ err }, 'could not release the leader key; it frees itself when the session expires')
    }
  }
}
