import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Dispatcher, Pool, errors } from 'undici'
import { findUpstream, type SidecarSettings, type SidecarUpstream } from '../../connect/sidecar.js'
import { Duration, msOr } from '../../consul/duration.js'
import { ConnectUpstreamClosedError, ConnectUpstreamFailedError, DeadlineExceededError, InvalidOptionError } from '../../errors.js'
import { firstProblem } from '../../util/validate.js'
import { DEADLINE_HEADER, MIN_TRY_MS, requestDeadline } from './deadline.js'
import { headerValue, withHeaders } from './request-headers.js'
import { legacyHandler, type LegacyHandler } from './undici-handler.js'

// An upstream reached through this service's sidecar has one target: the sidecar's local listener.
// The sidecar picks the instance (per connection) and carries the mutual TLS. So this dispatcher keeps
// only what still means something for a single local target:
// - deadlines: the caller's budget bounds the try (headers and body timeouts) and travels on in the
//   deadline header, so the far side can give up when we do;
// - no retries: a try that failed after the proxy accepted it may have reached the service (the proxy
//   is a TCP relay, it answers nothing itself), and a refused local port means the sidecar is down, which
//   a retry on the same port a few ms later does not fix;
// - no outlier ejection: ejecting the only target leaves nothing to send to (failing static means
//   keeping it), and the instances behind it are the sidecar's to judge.

/** What `fastify.consul.upstream(name)` returns: an undici Dispatcher bound to the sidecar's local port. */
export interface SidecarDispatcher extends Dispatcher {
  /** The upstream's service name. */
  readonly service: string
  /** `http://<localBindAddress>:<localBindPort>`: where requests go, whatever origin they name. */
  readonly origin: string
}

/** undici's codes for a timeout we set from the deadline. */
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/**
 * The caller's handler, with undici's errors turned into ours: a timeout we set from the deadline is
 * FST_REG_DISCOVERY_DEADLINE_EXCEEDED, the caller's own abort stays as it is, and anything else is
 * FST_REG_CONNECT_UPSTREAM_FAILED with undici's error as its cause (a client learns no address).
 */
function coded (caller: LegacyHandler, service: string, budget: number | undefined): LegacyHandler {
  // What the caller aborts with (its signal's reason, whatever that is) comes back to it unchanged.
  let abortedByCaller = false
  const onConnect = (abort: (err?: Error) => void, context?: unknown): void => {
    caller.onConnect((err) => {
      abortedByCaller = true
      abort(err)
    }, context)
  }
  const onError = (err: Error & { code?: string }): void => {
    if (abortedByCaller) caller.onError(err)
    else if (budget !== undefined && err.code !== undefined && TIMEOUTS.has(err.code)) caller.onError(new DeadlineExceededError(service, budget))
    else caller.onError(new ConnectUpstreamFailedError(service, err.code ?? err.name, { cause: err }))
  }
  // Every other callback is the caller's own, bound to it (its private state), present or absent as it was.
  return new Proxy(caller, {
    get (target, prop) {
      if (prop === 'onError') return onError
      if (prop === 'onConnect') return onConnect
      const value: unknown = Reflect.get(target, prop)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/**
 * A Pool to the sidecar's local port (its close() and destroy() are the Pool's), whose dispatch adds
 * the deadline and the coded errors.
 */
export class LocalSidecarDispatcher extends Pool implements SidecarDispatcher {
  readonly service: string
  readonly origin: string
  readonly #deadlineMs: number

  constructor (upstream: SidecarUpstream, deadlineMs: number) {
    const host = upstream.localBindAddress.includes(':') ? `[${upstream.localBindAddress}]` : upstream.localBindAddress
    const origin = `http://${host}:${upstream.localBindPort}`
    super(origin)
    this.origin = origin
    this.service = upstream.destinationName
    this.#deadlineMs = deadlineMs
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (handler === null || typeof handler !== 'object') throw new errors.InvalidArgumentError('handler must be an object')
    const caller = legacyHandler(handler)
    if (this.closed || this.destroyed) {
      caller.onError(new ConnectUpstreamClosedError(this.service))
      return false
    }
    const deadline = requestDeadline(headerValue(opts.headers, DEADLINE_HEADER), this.#deadlineMs)
    if (deadline === undefined) return super.dispatch({ ...opts, origin: this.origin }, coded(caller, this.service, undefined))
    const left = Math.floor(deadline.remaining())
    const budget = this.#deadlineMs > 0 ? this.#deadlineMs : left
    if (left < MIN_TRY_MS) {
      caller.onError(new DeadlineExceededError(this.service, Math.max(budget, 0)))
      return false
    }
    return super.dispatch({
      ...opts,
      origin: this.origin,
      headers: withHeaders(opts.headers, { [DEADLINE_HEADER]: String(left) }),
      headersTimeout: left,
      bodyTimeout: left
    }, coded(caller, this.service, budget))
  }
}

/** The options of `fastify.consul.upstream(name, options)`. */
export interface UpstreamOptions {
  /** Pick the upstream registered for this datacenter, when the sidecar lists the name for several. */
  datacenter?: string | undefined
  /** Every request's deadline (ms or a duration); default the plugin's `discovery.deadline`, or none. */
  deadline?: number | string | undefined
}

const UpstreamOptionsSchema = TypeCompiler.Compile(Type.Object({
  datacenter: Type.Optional(Type.String({ minLength: 1, description: 'a datacenter name' })),
  deadline: Type.Optional(Duration(0))
}, { additionalProperties: false, description: 'an options object { datacenter?, deadline? }' }))

/**
 * The upstream dispatchers of one app: `upstream(name, options)` called again with the same name and
 * options returns the same dispatcher (its connections are kept), so a handler may call it per request.
 * A dispatcher closed by its user is replaced at the next call; close() closes the rest, with the app.
 */
export class SidecarUpstreams {
  readonly #settings: SidecarSettings | undefined
  readonly #defaultDeadline: number | string | undefined
  readonly #open = new Map<string, LocalSidecarDispatcher>()

  constructor (settings: SidecarSettings | undefined, defaultDeadline: number | string | undefined) {
    this.#settings = settings
    this.#defaultDeadline = defaultDeadline
  }

  /**
   * A dispatcher to `service` through the sidecar registered with this service. Throws
   * FST_REG_CONSUL_INVALID_OPTION for bad options and FST_REG_CONNECT_UNKNOWN_UPSTREAM for a name the
   * sidecar has no local port for.
   */
  get (service: string, options?: UpstreamOptions): LocalSidecarDispatcher {
    if (typeof service !== 'string') throw new InvalidOptionError('upstream(name)', 'a service name (a string)')
    const problem = firstProblem(UpstreamOptionsSchema, options ?? {}, `upstream("${service}")`)
    if (problem) throw new InvalidOptionError(problem.field, problem.expected)
    const upstream = findUpstream(this.#settings, service, options?.datacenter)
    const deadlineMs = msOr(options?.deadline ?? this.#defaultDeadline, 0)
    const key = `${upstream.localBindAddress}:${upstream.localBindPort}/${deadlineMs}`
    let dispatcher = this.#open.get(key)
    // One its user closed is replaced: the name still has its local port.
    if (dispatcher === undefined || dispatcher.closed || dispatcher.destroyed) {
      dispatcher = new LocalSidecarDispatcher(upstream, deadlineMs)
      this.#open.set(key, dispatcher)
    }
    return dispatcher
  }

  async close (): Promise<void> {
    await Promise.all([...this.#open.values()].filter((d) => !d.closed && !d.destroyed).map((d) => d.close()))
  }
}
