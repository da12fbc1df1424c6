import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../util/logger.js'
import { fullJitter, slowJitter } from '../util/backoff.js'
import { httpError, type ConsulHttp, type ConsulResponse } from '../consul/http.js'
import { AclDeniedError, RegistrationRejectedError } from '../errors.js'
import type { AgentServiceRegister, RegisteredCheck, ServiceRegistration } from './definition.js'
import { deregisterService } from './deregistration.js'
import { advertisedStatus, type HealthSource } from './health-contribution.js'
import { watchSelf } from './self-heal-watch.js'
import { updateTtl } from './ttl-update.js'

export type RegistrationState = 'unregistered' | 'registering' | 'registered' | 'deregistering' | 'deregistered' | 'failed'

export interface RegistrarOptions {
  http: ConsulHttp
  log: Logger
  /** Backoff for register retries. */
  retry: { base: number, cap: number }
  selfHeal: boolean
  deregisterTimeout: number
  /** The TTL check's ttl in ms, when the check is a TTL check: the beat runs every ttl / 2. */
  ttl?: number | undefined
  /** Longest blocking wait of the self-heal watch, in ms (as every duration here). Default 5 minutes, Consul's maximum. */
  watchWaitMs?: number
  random?: () => number
}

/**
 * One service registration's life: register (with retries), keep it (self-heal watch, TTL updates),
 * deregister (bounded). Framework-agnostic: the Fastify adapter decides *when*, this decides *how*.
 */
export interface RegistrarEvents {
  state: [RegistrationState]
  /** Registered again after the agent lost us (self-heal watch, or a TTL check it no longer knew). */
  healed: []
}

export class Registrar extends EventEmitter<RegistrarEvents> {
  #state: RegistrationState = 'unregistered'
  #body: AgentServiceRegister | undefined
  #registration: ServiceRegistration | undefined
  #health: HealthSource | undefined
  #unsubscribe: (() => void) | undefined
  /** Aborted to stop every loop and timer of the current registration. */
  #life = new AbortController()
  /** Aborted to stop the keepers (self-heal watch, TTL beat) of one successful registration. */
  #keepers = new AbortController()
  #ttlTimer: NodeJS.Timeout | undefined
  #attempt: Promise<void> | undefined
  #lastError: (Error & { code?: string }) | undefined
  #settled: Promise<void> = Promise.resolve()
  #announced = false
  #deregistration: Promise<void> | undefined
  readonly #opts: RegistrarOptions

  constructor (opts: RegistrarOptions) {
    super()
    this.#opts = opts
  }

  get state (): RegistrationState {
    return this.#state
  }

  get registration (): ServiceRegistration | undefined {
    return this.#registration
  }

  /** Why the last try failed, until a registration succeeds: a coded error carrying Consul's reason. */
  get lastError (): (Error & { code?: string }) | undefined {
    return this.#lastError
  }

  #setState (state: RegistrationState): void {
    this.#state = state
    this.emit('state', state)
  }

  /**
   * Registers `body` and keeps it registered. Without failFast, unreachable agents and 5xx answers are
   * retried with full-jitter backoff in the background while the app serves; a 4xx (invalid, ACL) is
   * final: logged once with its code, state `failed`.
   */
  async register (body: AgentServiceRegister, registration: ServiceRegistration, health: HealthSource | undefined, failFast: boolean): Promise<void> {
    this.#deregistration = undefined
    // A previous attempt loop (say, retrying against an absent agent) must end before we replace it.
    this.#life.abort()
    this.#stopKeepers()
    await this.#settled
    this.#life = new AbortController()
    this.#body = body
    this.#registration = registration
    this.#health = health
    this.#announced = false
    await this.#registerLoop(failFast)
  }

  #registerLoop (failFast: boolean): Promise<void> {
    // One attempt loop at a time: a health change and the self-heal watch may both ask for it.
    if (this.#attempt === undefined) {
      const run = this.#runRegisterLoop(failFast).finally(() => { this.#attempt = undefined })
      this.#attempt = run
      // What register() waits for before replacing a loop: its end, whatever the outcome.
      this.#settled = run.catch(() => {})
    }
    return this.#attempt
  }

  /**
   * Tries until registered or stopped. Every failure is retried: an unreachable agent or a 5xx on the
   * retry backoff, a 4xx (a 403 "ACL not found" while a new leader replicates tokens, a policy granted
   * a minute later) at a slow pace near retry.cap. Logged once per distinct failure, not once per try.
   */
  async #runRegisterLoop (failFast: boolean): Promise<void> {
    const life = this.#life.signal
    this.#setState('registering')
    let logged: string | undefined
    for (let attempt = 1; ; attempt++) {
      const err = await this.#attemptRegister(failFast, life)
      if (err === undefined) return
      const rejected = isRejection(err)
      const delayMs = rejected ? slowJitter(this.#opts.retry, this.#opts.random) : fullJitter(attempt - 1, this.#opts.retry, this.#opts.random)
      const code = (err as { code?: string }).code
      const fields = { serviceId: this.#body!.ID, attempt, delayMs, code, reason: err.message }
      if (logged !== `${code} ${err.message}`) {
        logged = `${code} ${err.message}`
        if (rejected) this.#opts.log.error({ ...fields, err }, 'consul registration rejected; retrying slowly')
        else this.#opts.log.warn(fields, 'consul registration failed; retrying')
      } else {
        this.#opts.log.debug(fields, 'consul registration failed again; retrying')
      }
      try {
        await sleep(delayMs, undefined, { signal: life })
      } catch {
        // Stopped while waiting to retry.
        break
      }
    }
  }

  /**
   * One PUT. Returns the failure to retry, or undefined when done: registered, or stopped. With
   * failFast (an explicit register()) every failure is thrown instead, and a 4xx leaves state `failed`.
   */
  async #attemptRegister (failFast: boolean, life: AbortSignal): Promise<Error | undefined> {
    const body = this.#body!
    let res: ConsulResponse
    try {
      res = await this.#opts.http.send({
        method: 'PUT',
        path: '/v1/agent/service/register',
        // Without it, a re-registration keeps the old checks, and a leftover critical one hides us.
        query: { 'replace-existing-checks': true },
        body: this.#withCurrentStatus(body),
        signal: life
      })
    } catch (err) {
      // send() throws only when the agent is unreachable, or when we were stopped.
      if (life.aborted) return undefined
      return this.#failed(err as Error, failFast)
    }
    if (res.status >= 200 && res.status < 300) {
      this.#onRegistered()
      return undefined
    }
    if (res.status >= 500) return this.#failed(httpError(`PUT /v1/agent/service/register (${body.ID})`, res), failFast)
    const detail = res.text.trim().slice(0, 512)
    const err = res.status === 403 ? new AclDeniedError(`register ${body.ID}`, detail) : new RegistrationRejectedError(body.ID, res.status, detail)
    if (failFast) this.#setState('failed')
    return this.#failed(err, failFast)
  }

  #failed (err: Error, failFast: boolean): Error {
    this.#lastError = err
    if (failFast) throw err
    return err
  }

  /** The check's Status is the current health, so a re-registration never flaps us to critical. */
  #withCurrentStatus (body: AgentServiceRegister): AgentServiceRegister {
    if (!body.Check || !this.#health) return body
    return { ...body, Check: { ...body.Check, Status: advertisedStatus(this.#health.status()) } }
  }

  #onRegistered (): void {
    const reg = this.#registration!
    // Said once, with the failure it ends, so the log reads as state changes: failing → registered.
    const recovered = this.#lastError === undefined ? {} : { after: this.#lastError.message }
    this.#lastError = undefined
    this.#setState('registered')
    if (!this.#announced) {
      this.#announced = true
      this.#opts.log.info({ serviceId: reg.id, service: reg.name, address: reg.address, port: reg.port, check: reg.check, ...recovered }, 'registered in consul')
    } else {
      this.#opts.log.info({ serviceId: reg.id, ...recovered }, 're-registered in consul')
      this.emit('healed')
    }
    this.#startKeepers()
  }

  #startKeepers (): void {
    this.#stopKeepers()
    this.#keepers = new AbortController()
    const keepers = AbortSignal.any([this.#life.signal, this.#keepers.signal])
    const ttlMs = this.#opts.ttl
    if (this.#registration!.check?.type === 'ttl' && ttlMs !== undefined) {
      const beat = (): void => { this.#reportTtl().catch(() => {}) }
      // setTimeout + refresh (not setInterval): a slow agent cannot make updates pile up.
      this.#ttlTimer = setTimeout(() => {
        beat()
        this.#ttlTimer?.refresh()
      }, Math.max(250, Math.floor(ttlMs / 2)))
      this.#ttlTimer.unref()
      if (this.#health) this.#unsubscribe = this.#health.onChange(beat)
    }
    if (this.#opts.selfHeal) {
      const o = this.#opts
      // Success restarts the keepers, including a fresh watch, and aborts this one.
      watchSelf({ http: o.http, log: o.log, id: this.#registration!.id, waitMs: o.watchWaitMs, random: o.random, life: keepers, lost: () => this.#registerLoop(false) })
        .catch(/* c8 ignore next -- watchSelf handles its own errors */ () => {})
    }
  }

  #stopKeepers (): void {
    this.#keepers.abort()
    clearTimeout(this.#ttlTimer)
    this.#ttlTimer = undefined
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
  }

  /** Sends the current health to the TTL check; an agent that forgot the check gets us again. */
  async #reportTtl (): Promise<void> {
    const reg = this.#registration!
    const check = reg.check as Extract<RegisteredCheck, { type: 'ttl' }>
    // While a re-registration is in flight the agent may not know the check yet, and that PUT carries
    // the current Status itself: a beat now would only earn a "check gone" answer and a second loop.
    if (this.#state !== 'registered') return
    const current = this.#health?.status() ?? { status: 'passing' as const, checks: {} }
    if (await updateTtl(this.#opts.http, this.#opts.log, check.id, current, this.#life.signal) === 'gone') {
      this.#opts.log.warn({ serviceId: reg.id }, 'consul agent lost our TTL check; registering again')
      await this.#registerLoop(false)
    }
  }

  /**
   * Idempotent and bounded: a hung agent cannot hold shutdown for more than deregisterTimeout.
   * "Unknown service" in any of its forms (200 on 1.8, 404 now, 500 with ACLs on 1.8) is success.
   */
  deregister (): Promise<void> {
    // One attempt per registration: shutdown() and preClose both ask, and a failure is logged once.
    this.#deregistration ??= this.#deregister()
    return this.#deregistration
  }

  async #deregister (): Promise<void> {
    const body = this.#body
    this.#life.abort()
    this.#stopKeepers()
    if (!body || this.#state === 'deregistered' || this.#state === 'unregistered') return
    this.#setState('deregistering')
    const { http, log, deregisterTimeout } = this.#opts
    this.#setState(await deregisterService(http, log, body.ID, deregisterTimeout) ? 'deregistered' : 'failed')
  }

  /** Stops every loop and timer without telling Consul anything. */
  close (): void {
    this.#life.abort()
    this.#stopKeepers()
  }
}

/** A 4xx: Consul understood and refused. Retried too, but slowly: a token or policy fix takes minutes. */
function isRejection (err: Error): boolean {
  return err instanceof AclDeniedError || err instanceof RegistrationRejectedError
}
