import { EventEmitter } from 'node:events'
import { nextIndex } from '../consul/blocking-query.js'
import type { ConsulHttp } from '../consul/http.js'
import { ConfigInvalidError, ConfigUnavailableError } from '../errors.js'
import { fullJitter, type BackoffOptions } from '../util/backoff.js'
import type { Logger } from '../util/logger.js'
import { pause } from '../util/pause.js'
import { TokenBucket } from '../util/token-bucket.js'
import { changedPaths, pinRestartRequired } from './changed-paths.js'
import { readPrefix } from './kv-read.js'
import { KnownGoodFile } from './last-known-good.js'
import { layer, LayerError, type KvEntry, type Layered } from './layering.js'
import type { ConfigSettings } from './options.js'
import { ConfigSchema, deepFreeze } from './schema-check.js'

/**
 * - `live`: the last read of Consul succeeded.
 * - `stale`: Consul cannot be read; the last good configuration is served (and, if booted from the
 *   last-known-good file, `source` is `file`).
 * - `closed`: stopped.
 */
export type ConfigState = 'starting' | 'live' | 'stale' | 'closed'

/** A change that was not applied. */
export interface ConfigRefusal {
  /** The KV key as written in Consul, e.g. `config/user-service/pageSize`. */
  readonly key: string
  /** The property, e.g. `pageSize`; empty when the whole document or prefix was refused. */
  readonly field: string
  /** What would have been accepted. */
  readonly expected: string
  /** Epoch ms. */
  readonly at: number
}

/** `fastify.consul.config`: the live configuration's state and events. `fastify.config` is `current`. */
export interface ConfigHandle<T = Record<string, unknown>> {
  /** The configuration now: frozen, and replaced whole (never edited) on each good change. */
  readonly current: Readonly<T>
  readonly state: ConfigState
  /** Where `current` came from: Consul, or the last-known-good file (a `failFast: false` boot without Consul). */
  readonly source: 'consul' | 'file'
  /** The change last refused while it is still in Consul; undefined once KV validates again. */
  readonly refused: ConfigRefusal | undefined
  /** Restart-required paths whose value in Consul differs from the one this process runs with. */
  readonly pendingRestart: readonly string[]
  /** What /health reports as a warning (refused change, boot from file), or undefined. */
  readonly problem: string | undefined
  on (event: 'change', listener: (config: Readonly<T>, paths: readonly string[]) => void): this
  on (event: 'refused', listener: (refusal: ConfigRefusal) => void): this
  on (event: 'restart', listener: (paths: readonly string[]) => void): this
  on (event: 'state', listener: (state: ConfigState) => void): this
  off (event: 'change', listener: (config: Readonly<T>, paths: readonly string[]) => void): this
  off (event: 'refused', listener: (refusal: ConfigRefusal) => void): this
  off (event: 'restart', listener: (paths: readonly string[]) => void): this
  off (event: 'state', listener: (state: ConfigState) => void): this
}

export interface LiveConfigOptions {
  http: ConsulHttp
  log: Logger
  settings: ConfigSettings
  /** Backoff between failed reads. Default { base: 100, cap: 1000 }: Consul's return reaches the app within a second. */
  backoff?: BackoffOptions
}

/**
 * Configuration from a KV prefix: one read before ready(), then one blocking query on the prefix. A
 * change is applied whole or not at all: it is layered, converted and validated first, and only an
 * object that passes replaces `current` (one assignment, so a request sees the old or the new object,
 * never a mix). Anything else is refused and the last good object stays: fail static.
 */
export class LiveConfig extends EventEmitter implements ConfigHandle {
  readonly #http: ConsulHttp
  readonly #log: Logger
  readonly #s: ConfigSettings
  readonly #schema: ConfigSchema
  readonly #file: KnownGoodFile | undefined
  readonly #backoff: BackoffOptions
  // Spring waits a fixed 1 s (its watch delay) after every answer, which is most of its reload latency. A
  // bucket at discovery's default rate lets each change through at once and still bounds a flapping key.
  readonly #limiter = new TokenBucket({ perSecond: 10, burst: 10 })
  readonly #abort = new AbortController()
  #current: Readonly<Record<string, unknown>> = Object.freeze({})
  #boot: Readonly<Record<string, unknown>> = this.#current
  #keys = 0
  #state: ConfigState = 'starting'
  #source: 'consul' | 'file' = 'consul'
  #savedAt = 0
  #refused: ConfigRefusal | undefined
  #pending: readonly string[] = []
  #loop: Promise<void> | undefined

  constructor (opts: LiveConfigOptions) {
    super()
    this.#http = opts.http
    this.#s = opts.settings
    this.#log = opts.log.child({ config: opts.settings.layers.prefix })
    this.#schema = new ConfigSchema(opts.settings.schema)
    this.#file = opts.settings.lastKnownGoodFile === undefined ? undefined : new KnownGoodFile(opts.settings.lastKnownGoodFile)
    this.#backoff = opts.backoff ?? { base: 100, cap: 1000 }
  }

  get current (): Readonly<Record<string, unknown>> { return this.#current }
  get state (): ConfigState { return this.#state }
  get source (): 'consul' | 'file' { return this.#source }
  get refused (): ConfigRefusal | undefined { return this.#refused }
  get pendingRestart (): readonly string[] { return this.#pending }

  get problem (): string | undefined {
    if (this.#refused !== undefined) return `Consul KV key ${this.#refused.key} refused (expected ${this.#refused.expected}); serving the last good configuration`
    if (this.#source === 'file') return `serving the last-known-good configuration saved ${new Date(this.#savedAt).toISOString()}: Consul could not be read`
    return undefined
  }

  /**
   * The first read, before ready(): rejects with FST_REG_CONFIG_INVALID naming the key, or
   * FST_REG_CONFIG_UNAVAILABLE when Consul cannot be read (and, with failFast false, no file can stand in).
   */
  async load (): Promise<void> {
    const { prefix } = this.#s.layers
    let read
    try {
      read = await readPrefix(this.#http, prefix, 0, this.#s.wait, this.#abort.signal)
    } catch (err) {
      await this.#bootFromFile(err as Error)
      return
    }
    const layered = this.#layer(read.entries, true)!
    const checked = this.#schema.check(layered, this.#s.layers)
    if (!checked.ok) throw new ConfigInvalidError(checked.key, checked.expected)
    this.#boot = this.#current = checked.value
    this.#keys = layered.keys
    this.#save(layered)
    this.#setState('live')
    this.#log.info({ keys: layered.keys, contexts: this.#s.layers.contexts }, 'configuration loaded from Consul KV')
    this.#start(nextIndex(0, read.index))
  }

  async #bootFromFile (err: Error): Promise<void> {
    const { prefix } = this.#s.layers
    const reason = err.message
    if (this.#s.failFast || this.#file === undefined) throw Object.assign(new ConfigUnavailableError(prefix, reason), { cause: err })
    const snapshot = await this.#file.read(prefix)
    if (typeof snapshot === 'string') throw Object.assign(new ConfigUnavailableError(prefix, `${reason}; ${snapshot}`), { cause: err })
    const checked = this.#schema.check({ values: snapshot.values, sources: new Map(Object.entries(snapshot.sources)), keys: 1 }, this.#s.layers)
    if (!checked.ok) throw new ConfigInvalidError(checked.key, `${checked.expected} (read from ${this.#file.path})`)
    this.#boot = this.#current = checked.value
    this.#keys = Object.keys(snapshot.values).length
    this.#source = 'file'
    this.#savedAt = snapshot.savedAt
    this.#setState('stale')
    this.#log.warn({ err, file: this.#file.path, savedAt: new Date(snapshot.savedAt).toISOString() }, 'Consul KV could not be read; booted from the last-known-good file (stale)')
    this.#start(0)
  }

  #start (index: number): void {
    if (this.#s.watch) this.#loop = this.#run(index)
  }

  async close (): Promise<void> {
    this.#abort.abort()
    this.#setState('closed')
    await this.#loop
    this.removeAllListeners()
  }

  async #run (index: number): Promise<void> {
    const signal = this.#abort.signal
    let failures = 0
    while (!signal.aborted) {
      await pause(this.#limiter.reserve(), signal)
      try {
        const read = await readPrefix(this.#http, this.#s.layers.prefix, index, this.#s.wait, signal)
        const next = nextIndex(index, read.index)
        // The wait ran out with nothing new: the same index comes back, and there is nothing to do.
        const unchanged = next === index
        index = next
        failures = 0
        if (!unchanged) this.#apply(read.entries)
      } catch (err) {
        if (signal.aborted) break
        // A restarted -dev agent starts over at a low index: blocking on ours would stall a whole wait.
        index = 0
        this.#lost(err as Error, failures)
        await pause(fullJitter(failures++, this.#backoff), signal)
      }
    }
  }

  /** Layers the entries; a document that does not parse is refused (or, at boot, thrown). */
  #layer (entries: readonly KvEntry[], boot: boolean): Layered | undefined {
    try {
      return layer(entries, this.#s.layers)
    } catch (err) {
      const { key, expected } = err as LayerError
      if (boot) throw new ConfigInvalidError(key, expected)
      this.#refuse(key, '', expected)
      return undefined
    }
  }

  #apply (entries: readonly KvEntry[]): void {
    const layered = this.#layer(entries, false)
    if (layered === undefined) return
    if (layered.keys === 0 && this.#keys > 0) {
      // Every key gone at once is a wiped agent (a -dev restart, a lost data dir) or a deleted tree far
      // more often than a wish to run on defaults: keep what works, and say so.
      this.#refuse(`${this.#s.layers.prefix}/`, '', 'at least one key under the prefix (it is empty: a wiped agent or a deleted tree)')
      this.#reachable()
      return
    }
    const checked = this.#schema.check(layered, this.#s.layers)
    if (!checked.ok) {
      this.#refuse(checked.key, checked.field, checked.expected)
      this.#reachable()
      return
    }
    if (this.#refused !== undefined) {
      this.#log.info({ key: this.#refused.key }, 'configuration valid again')
      this.#refused = undefined
    }
    const pinned = pinRestartRequired(checked.value, this.#boot, this.#s.restartRequired)
    const next = deepFreeze(pinned.values)
    const paths = changedPaths(this.#current, next)
    const wasFile = this.#source === 'file'
    this.#keys = layered.keys
    this.#source = 'consul'
    if (paths.length > 0) {
      this.#current = next
      this.#log.info({ paths }, 'configuration changed')
      this.#emit('change', next, paths)
    }
    if (paths.length > 0 || wasFile) this.#save(layered)
    if (pinned.pending.join('\0') !== this.#pending.join('\0')) {
      this.#pending = Object.freeze(pinned.pending)
      if (pinned.pending.length > 0) this.#log.warn({ paths: pinned.pending }, 'configuration changed where a restart is required; not applied until then')
      this.#emit('restart', this.#pending)
    }
    this.#reachable()
  }

  #refuse (key: string, field: string, expected: string): void {
    // The same bad value read again (another key changed, a wait ran out) is the same refusal: one line.
    if (this.#refused?.key === key && this.#refused.expected === expected) return
    this.#refused = Object.freeze({ key, field, expected, at: Date.now() })
    this.#log.warn({ key, field, expected }, 'configuration change refused; keeping the last good configuration')
    this.#emit('refused', this.#refused)
  }

  #reachable (): void {
    if (this.#state === 'stale') this.#log.info('Consul KV readable again')
    this.#setState('live')
  }

  #lost (err: Error, failures: number): void {
    const code = (err as Error & { code?: string }).code
    if (this.#state === 'live') {
      this.#log.warn({ err, code }, 'Consul KV read failed; keeping the last good configuration')
      this.#setState('stale')
    } else {
      this.#log.debug({ err, code, failures }, 'Consul KV read failed')
    }
  }

  #save (layered: Layered): void {
    if (this.#file === undefined) return
    const snapshot = { prefix: this.#s.layers.prefix, savedAt: Date.now(), values: layered.values, sources: Object.fromEntries(layered.sources) }
    this.#file.write(snapshot).catch((err: Error) => this.#log.warn({ err, file: this.#file!.path }, 'could not write the last-known-good configuration file'))
  }

  #setState (state: ConfigState): void {
    if (state === this.#state || this.#state === 'closed') return
    this.#state = state
    this.#emit('state', state)
  }

  #emit (event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args)
    } catch (err) {
      // A throwing listener must not stop the loop the whole app reads its configuration from.
      this.#log.error({ err, event }, 'configuration listener threw')
    }
  }
}
