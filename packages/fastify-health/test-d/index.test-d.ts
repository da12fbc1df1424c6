// Type tests (tsd): what a strict TypeScript consumer of @reg/fastify-health relies on. They import the
// package by name, so they check the built `dist` declarations exactly as a user's project sees them.
import fastify, { type FastifyInstance } from 'fastify'
import type { FastifyError } from '@fastify/error'
import { expectAssignable, expectError, expectType } from 'tsd'
import healthPlugin, {
  AlreadyRegisteredError,
  DEFAULTS,
  DuplicateCheckError,
  HTTP_STATUS,
  healthPlugin as namedPlugin,
  InvalidCheckError,
  InvalidOptionError,
  UnderPressureConflictError,
  type CheckReport,
  type CheckResult,
  type CheckStatus,
  type FastifyHealth,
  type HealthListener,
  type HealthPluginOptions,
  type HealthStatus,
  type PressureMetric
} from '@reg/fastify-health'

const app = fastify()

// The default and the named export are the same plugin.
expectType<typeof healthPlugin>(namedPlugin)

// ── options ──────────────────────────────────────────────────────────────────────────────────────
// Every documented option, as a user writes them: this must compile (the control for the rejections below).
app.register(healthPlugin)
app.register(healthPlugin, {
  path: '/ready',
  livePath: '/alive',
  details: false,
  defaultTimeout: 1000,
  defaultInterval: 2000,
  underPressure: {
    maxEventLoopDelay: 500,
    maxHeapUsedBytes: 1e9,
    maxRssBytes: 2e9,
    maxEventLoopUtilization: 0.98,
    sampleInterval: 100,
    loadShedding: true
  },
  checks: {
    db: async (signal) => { expectType<AbortSignal>(signal) },
    cache: { fn: () => ({ status: 'warning', output: 'slow' }), critical: false, timeout: 500, interval: 1000 }
  }
})
// Fastify's own register options still pass through.
app.register(healthPlugin, { prefix: '/internal', path: '/health' })
expectAssignable<HealthPluginOptions>({ path: '/health', details: true })

// Unknown keys are rejected, at the top level and inside nested objects.
expectError(app.register(healthPlugin, { pathh: '/health' }))
expectError(app.register(healthPlugin, { path: '/health', verbose: true }))
expectError(app.register(healthPlugin, { underPressure: { maxEventLoopDelay: 500, maxCpu: 0.9 } }))
expectError(app.register(healthPlugin, { checks: { db: { fn: () => true, retries: 3 } } }))
// Wrong types are rejected.
expectError(app.register(healthPlugin, { path: 42 }))
expectError(app.register(healthPlugin, { details: 'yes' }))
expectError(app.register(healthPlugin, { defaultTimeout: true }))
expectAssignable<HealthPluginOptions>({ defaultTimeout: '2s', defaultInterval: 5000, underPressure: { sampleInterval: '250ms', status: 'warning' } })
expectError(app.register(healthPlugin, { underPressure: { loadShedding: 1 } }))
expectError(app.register(healthPlugin, { checks: { db: 'SELECT 1' } }))
expectError(app.register(healthPlugin, { checks: { db: { critical: true } } }))
expectError(app.register(healthPlugin, { checks: { db: { fn: () => true, critical: 'no' } } }))

// ── declaration merging: fastify.health ──────────────────────────────────────────────────────────
expectType<FastifyHealth>(app.health)
expectType<string>(app.health.path)
expectType<string>(app.health.livePath)
expectError(app.health.path = '/other')
expectType<HealthStatus>(app.health.status())
expectType<CheckStatus>(app.health.status().status)
expectType<boolean>(app.health.status().draining)
expectType<boolean>(app.health.status().underPressure)
expectType<readonly PressureMetric[]>(app.health.status().pressure)
expectType<CheckResult | undefined>(app.health.status().checks.db)
expectType<void>(app.health.drain())
expectType<() => void>(app.health.onChange((status) => { expectType<HealthStatus>(status) }))
expectAssignable<HealthListener>((status: HealthStatus) => { expectType<CheckStatus>(status.status) })
// It is there in any plugin's scope too, typed the same way.
app.register(async (scope: FastifyInstance) => { expectType<FastifyHealth>(scope.health) })

// ── addCheck ─────────────────────────────────────────────────────────────────────────────────────
expectType<void>(app.health.addCheck('db', async () => {}))
expectType<void>(app.health.addCheck('db', (signal) => { expectType<AbortSignal>(signal); return true }))
expectType<void>(app.health.addCheck('cache', async (): Promise<CheckReport> => ({ status: 'warning', output: 'hit rate 40%' })))
expectType<void>(app.health.addCheck('disk', () => {}, { critical: false, timeout: 200, interval: 10_000 }))
expectType<void>(app.health.addCheck('disk', () => {}, {}))
expectError(app.health.addCheck('db'))
expectError(app.health.addCheck(42, () => {}))
expectError(app.health.addCheck('db', 'SELECT 1'))
expectError(app.health.addCheck('db', () => {}, { critical: 'no' }))
expectError(app.health.addCheck('db', () => {}, { timeout: true }))
app.health.addCheck('db', () => {}, { timeout: '2s', interval: '10s' })
app.health.addCheck('warming', () => {}, { grace: '30s', interval: 1000 })
expectError(app.health.addCheck('db', () => {}, { retries: 3 }))
expectError(app.health.addCheck('db', () => {}, {}, 'extra'))
// A report's status is one of Consul's three words.
expectError<CheckReport>({ status: 'ok' })

// ── errors: classes with literal codes and status codes ───────────────────────────────────────────
expectType<'FST_REG_HEALTH_INVALID_OPTION'>(new InvalidOptionError('path', 'a string', 'number').code)
expectType<500>(new InvalidOptionError('path', 'a string', 'number').statusCode)
expectType<'FST_REG_HEALTH_INVALID_CHECK'>(new InvalidCheckError('db', 'fn', 'a function', 'string').code)
expectType<'FST_REG_HEALTH_DUPLICATE_CHECK'>(new DuplicateCheckError('db').code)
expectType<'FST_REG_HEALTH_ALREADY_REGISTERED'>(new AlreadyRegisteredError().code)
expectType<'FST_REG_HEALTH_UNDER_PRESSURE_CONFLICT'>(new UnderPressureConflictError().code)
expectAssignable<FastifyError>(new DuplicateCheckError('db'))
expectAssignable<Error>(new DuplicateCheckError('db'))
// The message arguments are typed: a wrong count is a compile error, not a garbled message.
expectError(new DuplicateCheckError())
expectError(new InvalidOptionError('path'))
// `instanceof` narrows an unknown error to the class and its literal code, as users catch them.
declare const caught: unknown
if (caught instanceof DuplicateCheckError) {
  expectType<'FST_REG_HEALTH_DUPLICATE_CHECK'>(caught.code)
}

// ── exported constants ───────────────────────────────────────────────────────────────────────────
expectType<number>(HTTP_STATUS.warning)
expectType<'/health'>(DEFAULTS.path)
expectType<2000>(DEFAULTS.defaultTimeout)
expectError(DEFAULTS.path = '/x')
