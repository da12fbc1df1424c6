import { inspect } from 'node:util'
import type { MeterProvider } from '@opentelemetry/api'
import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { CheckDefinition, CheckFn, CheckOptions } from './checks.js'
import { InvalidCheckError, InvalidOptionError } from './errors.js'
import type { PressureOptions } from './pressure.js'
import { Duration, toMs } from './duration.js'
import { fieldOf, firstProblem } from './validate.js'

// The option schema, its defaults, and the one place that turns user input into validated, complete options.

/** A check given in the `checks` option, with its own settings. */
export interface CheckSpec extends CheckOptions {
  fn: CheckFn
}

export interface UnderPressureOptions {
  /** Mean event-loop delay (ms) over one sample above which the instance is under pressure. 0 = off. Default 1000. */
  maxEventLoopDelay?: number | undefined
  /** Heap used (bytes) above which the instance is under pressure. 0 = off. Default 0. */
  maxHeapUsedBytes?: number | undefined
  /** Resident set size (bytes) above which the instance is under pressure. 0 = off. Default 0. */
  maxRssBytes?: number | undefined
  /** Event-loop utilisation (0..1) over one sample above which the instance is under pressure. 0 = off. Default 0. */
  maxEventLoopUtilization?: number | undefined
  /** Time between samples: ms or a duration, at least 20 ms. Default 1000. */
  sampleInterval?: number | string | undefined
  /** true: every route in scope answers 503 while under pressure. false: only readiness does. Default false. */
  loadShedding?: boolean | undefined
  /** What readiness reports while under pressure: 'warning' (429) or 'critical' (503). Default 'warning'. */
  status?: 'warning' | 'critical' | undefined
}

export interface HealthPluginOptions {
  /** Readiness route. Default `/health`. */
  path?: string | undefined
  /** Liveness route. Default `/health/live`. */
  livePath?: string | undefined
  /** false: the readiness body is only `{ status }`. Default true. */
  details?: boolean | undefined
  /** Checks by name: a function, or `{ fn, critical?, timeout?, interval? }`. */
  checks?: Record<string, CheckFn | CheckSpec> | undefined
  underPressure?: UnderPressureOptions | undefined
  /** Timeout (ms) of checks that set none. Default 2000. */
  defaultTimeout?: number | string | undefined
  /** Interval (ms) of checks that set none. Default 5000. */
  defaultInterval?: number | string | undefined
  /**
   * Where the plugin's metrics go (see README, Metrics). Default: the global one from `@opentelemetry/api`,
   * read when the plugin is registered, which is a no-op until an SDK sets it.
   */
  meterProvider?: MeterProvider | undefined
}

export interface NormalizedOptions {
  readonly path: string
  readonly livePath: string
  readonly details: boolean
  readonly checks: readonly CheckDefinition[]
  readonly pressure: PressureOptions
  readonly defaultTimeout: number
  readonly defaultInterval: number
  readonly meterProvider: MeterProvider | undefined
}

export const DEFAULTS = Object.freeze({
  path: '/health',
  livePath: '/health/live',
  details: true,
  defaultTimeout: 2000,
  defaultInterval: 5000,
  critical: true,
  maxEventLoopDelay: 1000,
  maxHeapUsedBytes: 0,
  maxRssBytes: 0,
  maxEventLoopUtilization: 0,
  sampleInterval: 1000,
  loadShedding: false,
  pressureStatus: 'warning' as 'warning' | 'critical'
})

/** Node clamps a longer setTimeout delay to 1 ms, which would turn a long interval into a busy loop. */
const MAX_TIMER_MS = 2_147_483_647

const Millis = (minimum: number): TSchema => Duration(minimum, MAX_TIMER_MS)

const Path = Type.String({ pattern: '^/', description: 'a URL path starting with "/"' })

const NAME_PATTERN = '^.{1,128}$'
const Name = Type.String({ pattern: NAME_PATTERN, description: 'a check name of 1 to 128 characters without line breaks' })

const Fn = Type.Function([], Type.Unknown(), { description: 'a function' })

const checkOptionProperties = {
  critical: Type.Optional(Type.Boolean()),
  timeout: Type.Optional(Millis(1)),
  // The floor keeps a misconfigured check from spinning on a 0 ms timer.
  interval: Type.Optional(Millis(10)),
  grace: Type.Optional(Millis(0))
}

const CheckOptionsSchema = Type.Object(checkOptionProperties, { additionalProperties: false })

const OptionsSchema = Type.Object({
  path: Type.Optional(Path),
  livePath: Type.Optional(Path),
  details: Type.Optional(Type.Boolean()),
  checks: Type.Optional(Type.Record(Name, Type.Object({ fn: Fn, ...checkOptionProperties }, {
    additionalProperties: false,
    description: 'a function or { fn, critical?, timeout?, interval?, grace? }'
  }), {
    additionalProperties: false,
    description: 'an object of checks keyed by names of 1 to 128 characters without line breaks'
  })),
  underPressure: Type.Optional(Type.Object({
    maxEventLoopDelay: Type.Optional(Type.Number({ minimum: 0, description: 'milliseconds, 0 or more (0 turns it off)' })),
    maxHeapUsedBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'an integer number of bytes, 0 or more (0 turns it off)' })),
    maxRssBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'an integer number of bytes, 0 or more (0 turns it off)' })),
    maxEventLoopUtilization: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'a number from 0 to 1 (0 turns it off)' })),
    // Below ~11 ms under-pressure's delay mean comes out NaN, which it turns into Infinity: a spurious 503.
    sampleInterval: Type.Optional(Millis(20)),
    loadShedding: Type.Optional(Type.Boolean()),
    status: Type.Optional(Type.Union([Type.Literal('warning'), Type.Literal('critical')], { description: '"warning" or "critical"' }))
  }, { additionalProperties: false })),
  defaultTimeout: Type.Optional(Millis(1)),
  defaultInterval: Type.Optional(Millis(10)),
  // Checked by shape in normalizeOptions: a provider is an object graph (getMeter on its prototype) that is not ours to walk.
  meterProvider: Type.Optional(Type.Unknown())
}, { additionalProperties: false })

const AddCheckSchema = Type.Object({
  name: Name,
  fn: Fn,
  options: Type.Optional(CheckOptionsSchema)
})

// Compiled once per process: validation then costs a function call per registration.
const optionsValidator = TypeCompiler.Compile(OptionsSchema)
const addCheckValidator = TypeCompiler.Compile(AddCheckSchema)

function show (value: unknown): string {
  const text = inspect(value, { depth: 1, breakLength: Infinity })
  return text.length > 80 ? text.slice(0, 79) + '…' : text
}

/** A bare function is shorthand for `{ fn }`; expanding it first lets the schema point into the object form. */
function expandChecks (input: unknown): unknown {
  if (typeof input !== 'object' || input === null) return input
  const { checks } = input as { checks?: unknown }
  if (typeof checks !== 'object' || checks === null || Array.isArray(checks)) return input
  const expanded = Object.entries(checks).map(([name, entry]) => [name, typeof entry === 'function' ? { fn: entry } : entry])
  return { ...input, checks: Object.fromEntries(expanded) }
}

/**
 * Fastify's pluginTimeout also bounds each onReady hook, and onReady awaits the first run of every check:
 * a check allowed to take longer would fail ready() with a bare AVV_ERR_READY_TIMEOUT instead of reporting.
 * 0 means Fastify imposes no limit.
 */
function outlastsStartup (timeout: number, startupBudget: number): boolean {
  return startupBudget > 0 && timeout >= startupBudget
}

function budgetText (startupBudget: number): string {
  return `less than Fastify's pluginTimeout (${startupBudget} ms), which bounds the first run in onReady`
}

/**
 * Validates the plugin options and fills in defaults. Throws {@link InvalidOptionError} on the first problem.
 * `startupBudget` is Fastify's pluginTimeout (0: none).
 */
export function normalizeOptions (input: unknown, startupBudget = 0): NormalizedOptions {
  const expanded = expandChecks(input)
  const problem = firstProblem(optionsValidator, expanded)
  if (problem !== undefined) throw new InvalidOptionError(problem.field, problem.expected, show(problem.value))

  const opts = expanded as HealthPluginOptions
  if (opts.meterProvider !== undefined && typeof (opts.meterProvider as { getMeter?: unknown } | null)?.getMeter !== 'function') {
    throw new InvalidOptionError('meterProvider', 'an OpenTelemetry MeterProvider (an object with getMeter())', show(opts.meterProvider))
  }
  const path = opts.path ?? DEFAULTS.path
  const livePath = opts.livePath ?? DEFAULTS.livePath
  if (path === livePath) {
    throw new InvalidOptionError('livePath', `a path other than the readiness path "${path}"`, show(livePath))
  }
  const defaultTimeout = ms(opts.defaultTimeout, DEFAULTS.defaultTimeout)
  const defaultInterval = ms(opts.defaultInterval, DEFAULTS.defaultInterval)
  if (outlastsStartup(defaultTimeout, startupBudget)) {
    throw new InvalidOptionError('defaultTimeout', budgetText(startupBudget), show(defaultTimeout))
  }
  for (const [name, entry] of Object.entries(opts.checks ?? {})) {
    const { timeout } = entry as CheckSpec
    if (timeout !== undefined && outlastsStartup(ms(timeout, 0), startupBudget)) {
      throw new InvalidOptionError(fieldOf(fieldOf('checks', name), 'timeout'), budgetText(startupBudget), show(timeout))
    }
  }
  const up = opts.underPressure ?? {}
  return {
    path,
    livePath,
    details: opts.details ?? DEFAULTS.details,
    checks: Object.entries(opts.checks ?? {}).map(([name, entry]) => {
      const spec = entry as CheckSpec
      return definition(name, spec.fn, spec, defaultTimeout, defaultInterval)
    }),
    pressure: {
      maxEventLoopDelay: up.maxEventLoopDelay ?? DEFAULTS.maxEventLoopDelay,
      maxHeapUsedBytes: up.maxHeapUsedBytes ?? DEFAULTS.maxHeapUsedBytes,
      maxRssBytes: up.maxRssBytes ?? DEFAULTS.maxRssBytes,
      maxEventLoopUtilization: up.maxEventLoopUtilization ?? DEFAULTS.maxEventLoopUtilization,
      sampleInterval: ms(up.sampleInterval, DEFAULTS.sampleInterval),
      loadShedding: up.loadShedding ?? DEFAULTS.loadShedding,
      status: up.status ?? DEFAULTS.pressureStatus
    },
    defaultTimeout,
    defaultInterval,
    meterProvider: opts.meterProvider
  }
}

/** Validated durations to ms; the schema has already refused anything toMs cannot read. */
function ms (value: number | string | undefined, fallback: number): number {
  return value === undefined ? fallback : toMs(value)!
}

function definition (name: string, fn: CheckFn, options: CheckOptions, defaultTimeout: number, defaultInterval: number): CheckDefinition {
  return Object.freeze({
    name,
    fn,
    critical: options.critical ?? DEFAULTS.critical,
    timeout: ms(options.timeout, defaultTimeout),
    interval: ms(options.interval, defaultInterval),
    grace: ms(options.grace, 0)
  })
}

/**
 * Validates the arguments of `addCheck()`. Throws {@link InvalidCheckError} on the first problem.
 * `startupBudget` is Fastify's pluginTimeout for a check whose first run onReady will await, else 0.
 */
export function checkDefinition (name: unknown, fn: unknown, options: unknown, defaults: NormalizedOptions, startupBudget = 0): CheckDefinition {
  const problem = firstProblem(addCheckValidator, { name, fn, options })
  if (problem !== undefined) throw new InvalidCheckError(show(name), problem.field, problem.expected, show(problem.value))
  const def = definition(name as string, fn as CheckFn, (options ?? {}) as CheckOptions, defaults.defaultTimeout, defaults.defaultInterval)
  // Only an explicit timeout can be too long: the default was checked against the same budget at registration.
  if (outlastsStartup(def.timeout, startupBudget)) {
    throw new InvalidCheckError(show(name), 'options.timeout', budgetText(startupBudget), show(def.timeout))
  }
  return def
}
