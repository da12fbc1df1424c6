import t from 'tap'
import { goDuration, toMs } from '../src/consul/duration.js'
import { normalizeOptions } from '../src/options.js'
import { dispatchSettings } from '../src/discovery/options.js'

function codeAndField (input: unknown): { code?: string, message: string } {
  try {
    normalizeOptions(input)
  } catch (err) {
    return err as { code?: string, message: string }
  }
  throw new Error('expected normalizeOptions to throw')
}

t.test('defaults', async (t) => {
  const o = normalizeOptions({ service: { name: 'svc' } })
  t.same(o.check, { type: 'http', path: undefined, method: undefined, header: undefined, interval: 10_000, timeout: 5_000, deregisterCriticalServiceAfter: 60_000, tlsSkipVerify: undefined, successBeforePassing: undefined, failuresBeforeCritical: undefined })
  t.equal(o.register, true)
  t.equal(o.failFast, false)
  t.equal(o.selfHeal, true)
  t.equal(o.deregisterTimeout, 2000)
  t.equal(o.drainDelay, 500)
  t.same(o.retry, { base: 200, cap: 30_000 })
  t.same(o.consul, {})
  t.equal(o.client, undefined)
})

t.test('check variants normalise durations to milliseconds', async (t) => {
  t.same(normalizeOptions({ service: { name: 's' }, check: { type: 'ttl' } }).check, { type: 'ttl', ttl: 10_000, deregisterCriticalServiceAfter: 60_000 })
  t.same(normalizeOptions({ service: { name: 's' }, check: { type: 'ttl', ttl: '1m', deregisterCriticalServiceAfter: '2h' } }).check, { type: 'ttl', ttl: 60_000, deregisterCriticalServiceAfter: 7_200_000 })
  t.same(normalizeOptions({ service: { name: 's' }, check: { type: 'tcp', interval: 1500, timeout: '0.5s' } }).check, { type: 'tcp', interval: 1500, timeout: 500, deregisterCriticalServiceAfter: 60_000, successBeforePassing: undefined, failuresBeforeCritical: undefined })
  t.same(normalizeOptions({ service: { name: 's' }, check: false }).check, { type: 'none' })
  t.match(normalizeOptions({ service: { name: 's' }, check: { type: 'http', path: '/ready', tlsSkipVerify: true, successBeforePassing: 2, failuresBeforeCritical: 3 } }).check, { path: '/ready', tlsSkipVerify: true, successBeforePassing: 2, failuresBeforeCritical: 3 })
})

t.test('http method and header, gRPC checks and the thresholds normalise to what Consul takes', async (t) => {
  t.match(normalizeOptions({ service: { name: 's' }, check: { method: 'POST', header: { 'x-probe': 'consul', accept: ['a', 'b'] } } }).check,
    { type: 'http', method: 'POST', header: { 'x-probe': ['consul'], accept: ['a', 'b'] } }, 'a single value becomes Consul\'s array')
  t.same(normalizeOptions({ service: { name: 's' }, check: { type: 'grpc', port: 9090, grpcService: 'users.v1.Users', grpcUseTls: true, interval: '2s', failuresBeforeCritical: 3 } }).check,
    { type: 'grpc', port: 9090, grpcService: 'users.v1.Users', grpcUseTls: true, tlsSkipVerify: undefined, interval: 2000, timeout: 5000, deregisterCriticalServiceAfter: 60_000, successBeforePassing: undefined, failuresBeforeCritical: 3 })
  t.match(normalizeOptions({ service: { name: 's' }, check: { type: 'tcp', successBeforePassing: 2 } }).check, { type: 'tcp', successBeforePassing: 2 })
})

t.test('a check without a type is an http check, as documented', async (t) => {
  t.match(normalizeOptions({ service: { name: 's' }, check: { interval: '2s' } }).check, { type: 'http', interval: 2000, timeout: 5000 })
  t.match(normalizeOptions({ service: { name: 's' }, check: {} }).check, { type: 'http', interval: 10_000 })
})

t.test('plugin-level durations take the same grammar', async (t) => {
  const o = normalizeOptions({ service: { name: 's' }, deregisterTimeout: '1.5s', drainDelay: '0ms', retry: { base: '100ms', cap: '1m' } })
  t.equal(o.deregisterTimeout, 1500)
  t.equal(o.drainDelay, 0)
  t.same(o.retry, { base: 100, cap: 60_000 })
})

t.test('discovery options are validated at ready(), named as written', async (t) => {
  for (const [discovery, field] of [
    [{ balancer: 'fastest' }, /option discovery\.balancer: expected one of "round-robin", "random", "weighted"/],
    [{ wait: '20m' }, /option discovery\.wait: expected a duration from 1s to 10m/],
    [{ ballancer: 'random' }, /option discovery\.ballancer: .*did you mean `balancer`/],
    [{ hedge: 'yes' }, /option discovery\.hedge: expected a boolean or an object/],
    [{ hedge: { percentile: 2 } }, /option discovery\.hedge\.percentile: expected a number from 0\.5 to 0\.999/],
    [{ hedge: { delay: 'soon' } }, /option discovery\.hedge\.delay: expected a duration/],
    [{ hedge: { minDelay: '1s', maxDelay: '10ms' } }, /option discovery\.hedge\.maxDelay: expected a duration >= hedge\.minDelay/],
    [{ deadline: -1 }, /option discovery\.deadline: expected a duration/],
    [{ retryThrottle: { tokenRatio: 0 } }, /option discovery\.retryThrottle\.tokenRatio: expected a number > 0 and <= 1/],
    [{ retryThrottle: true }, /option discovery\.retryThrottle: expected false or an object \{ maxTokens\?, tokenRatio\? \}/]
  ] as const) {
    const err = codeAndField({ service: { name: 's' }, discovery })
    t.equal(err.code, 'FST_REG_DISCOVERY_INVALID_OPTION')
    t.match(err.message, field)
  }
})

t.test('durations', async (t) => {
  t.equal(toMs('250ms'), 250)
  t.equal(toMs('1m30s'), 90_000)
  t.equal(toMs('1.5'), undefined, 'a unit is required')
  t.equal(toMs('10 s'), undefined)
  t.equal(toMs(-1), undefined)
  t.equal(toMs(Number.NaN), undefined)
  t.equal(toMs(null), undefined)
  t.equal(toMs('1.5s'), 1500)
  t.equal(toMs('2m'), 120_000)
  t.equal(toMs('1h'), 3_600_000)
  t.equal(toMs(42), 42)
  t.equal(goDuration(10_000), '10s')
  t.equal(goDuration(1500), '1500ms')
})

// Every invalid option fails with the same stable code, and the message names the field.
const invalid: Array<[string, unknown, RegExp]> = [
  ['not an object', null, /options/],
  ['no service', {}, /option service: .*required/],
  ['empty name', { service: { name: '' } }, /service\.name/],
  ['name with a space', { service: { name: 'a b' } }, /service\.name/],
  ['unknown top-level option', { service: { name: 's' }, whatever: true }, /option whatever: expected a known option \(service, /],
  ['unknown service field', { service: { name: 's', nmae: 'x' } }, /option service\.nmae: .*did you mean `name`/],
  ['port 0', { service: { name: 's', port: 0 } }, /service\.port.*1 to 65535/],
  ['port 70000', { service: { name: 's', port: 70000 } }, /service\.port/],
  ['address 0.0.0.0', { service: { name: 's', address: '0.0.0.0' } }, /service\.address.*0\.0\.0\.0/],
  ['address ::', { service: { name: 's', address: '::' } }, /service\.address/],
  ['tags not strings', { service: { name: 's', tags: [1] } }, /service\.tags\[0\]/],
  ['meta key with a dot', { service: { name: 's', meta: { 'a.b': 'x' } } }, /service\.meta/],
  ['meta key reserved prefix', { service: { name: 's', meta: { 'consul-x': 'x' } } }, /service\.meta/],
  ['meta key too long', { service: { name: 's', meta: { ['k'.repeat(129)]: 'x' } } }, /service\.meta/],
  ['meta value not a string', { service: { name: 's', meta: { 'build-id': 1 } } }, /service\.meta\["build-id"\]/],
  ['meta value over 512 bytes', { service: { name: 's', meta: { k: 'é'.repeat(300) } } }, /service\.meta\["k"\].*512 bytes/],
  ['65 meta pairs', { service: { name: 's', meta: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) } }, /service\.meta.*64 pairs/],
  ['weights passing 0', { service: { name: 's', weights: { passing: 0, warning: 1 } } }, /service\.weights\.passing.*1 to 65535/],
  ['weights warning too big', { service: { name: 's', weights: { passing: 1, warning: 70000 } } }, /service\.weights\.warning/],
  ['weights missing warning', { service: { name: 's', weights: { passing: 1 } } }, /service\.weights\.warning.*required/],
  ['check type unknown', { service: { name: 's' }, check: { type: 'h2ping' } }, /option check\.type: .*"http", "tcp", "grpc", "ttl"/],
  ['check not an object', { service: { name: 's' }, check: 'http' }, /option check: /],
  ['check interval junk', { service: { name: 's' }, check: { type: 'http', interval: '10 seconds' } }, /option check\.interval: expected a duration/],
  ['check interval with a space, type defaulted', { service: { name: 's' }, check: { interval: '10 s' } }, /option check\.interval: expected a duration/],
  ['interval on a ttl check', { service: { name: 's' }, check: { type: 'ttl', interval: '10s' } }, /option check\.interval: .*belongs to http, tcp, grpc checks/],
  ['ttl field on http', { service: { name: 's' }, check: { type: 'http', ttl: '5s' } }, /option check\.ttl: .*belongs to ttl checks/],
  ['unknown check field', { service: { name: 's' }, check: { intervall: '5s' } }, /option check\.intervall: .*did you mean `interval`/],
  ['ttl of 10 ms', { service: { name: 's' }, check: { type: 'ttl', ttl: 10 } }, /option check\.ttl: expected a duration of at least 1s/],
  ['interval below Consul\'s 1s floor', { service: { name: 's' }, check: { interval: '500ms' } }, /option check\.interval: expected a duration of at least 1s/],
  ['deregisterCriticalServiceAfter below Consul\'s 1m floor', { service: { name: 's' }, check: { deregisterCriticalServiceAfter: '30s' } }, /option check\.deregisterCriticalServiceAfter: expected a duration of at least 1m/],
  ['check path without slash', { service: { name: 's' }, check: { type: 'http', path: 'health' } }, /option check\.path: /],
  ['http method lower-case', { service: { name: 's' }, check: { method: 'get' } }, /option check\.method: /],
  ['http header name with a space', { service: { name: 's' }, check: { header: { 'x probe': 'a' } } }, /option check\.header\["x probe"\]: /],
  ['http header value with a line break', { service: { name: 's' }, check: { header: { 'x-probe': 'a\r\nInjected: 1' } } }, /option check\.header/],
  ['http header empty array', { service: { name: 's' }, check: { header: { 'x-probe': [] } } }, /option check\.header/],
  ['header on a tcp check', { service: { name: 's' }, check: { type: 'tcp', header: { a: 'b' } } }, /option check\.header: .*belongs to http checks/],
  ['grpcService on an http check', { service: { name: 's' }, check: { grpcService: 'x' } }, /option check\.grpcService: .*belongs to grpc checks/],
  ['grpc port out of range', { service: { name: 's' }, check: { type: 'grpc', port: 70000 } }, /option check\.port: /],
  ['grpcService with a slash', { service: { name: 's' }, check: { type: 'grpc', grpcService: 'a/b' } }, /option check\.grpcService: /],
  ['failuresBeforeCritical negative', { service: { name: 's' }, check: { type: 'tcp', failuresBeforeCritical: -1 } }, /option check\.failuresBeforeCritical: /],
  ['successBeforePassing on a ttl check', { service: { name: 's' }, check: { type: 'ttl', successBeforePassing: 2 } }, /option check\.successBeforePassing: .*belongs to/],
  ['service.tag for tags', { service: { name: 's', tag: ['a'] } }, /option service\.tag: .*did you mean `tags`/],
  ['unknown top-level option close to a known one', { service: { name: 's' }, regster: true }, /option regster: .*did you mean `register`/],
  ['deregisterTimeout 0', { service: { name: 's' }, deregisterTimeout: 0 }, /option deregisterTimeout: expected a duration of at least 1ms/],
  ['deregisterTimeout as a bad string', { service: { name: 's' }, deregisterTimeout: '2 seconds' }, /option deregisterTimeout: /],
  ['drainDelay negative', { service: { name: 's' }, drainDelay: -1 }, /drainDelay/],
  ['retry cap below base', { service: { name: 's' }, retry: { base: 500, cap: 100 } }, /retry\.cap.*at least retry\.base/],
  ['consul.address empty', { service: { name: 's' }, consul: { address: '' } }, /consul\.address/],
  ['consul.secure not boolean', { service: { name: 's' }, consul: { secure: 'yes' } }, /consul\.secure.*boolean/],
  ['client not a consul client', { service: { name: 's' }, client: {} }, /client.*consul/],
  ['failFast not boolean', { service: { name: 's' }, failFast: 1 }, /failFast.*boolean/]
]

for (const [what, input, field] of invalid) {
  t.test(`invalid: ${what}`, async (t) => {
    const err = codeAndField(input)
    t.equal(err.code, 'FST_REG_CONSUL_INVALID_OPTION')
    t.match(err.message, field)
  })
}

t.test('hedge and deadline settings: off by default; true adapts; a bound left out takes its default', async (t) => {
  t.equal(dispatchSettings({}).hedge, undefined)
  t.equal(dispatchSettings({ hedge: false }).hedge, undefined)
  t.same(dispatchSettings({ hedge: true }).hedge, { delayMs: undefined, percentile: 0.95, minDelayMs: 10, maxDelayMs: 1000 })
  t.same(dispatchSettings({ hedge: { delay: '50ms', percentile: 0.9 } }).hedge, { delayMs: 50, percentile: 0.9, minDelayMs: 10, maxDelayMs: 1000 })
  t.throws(() => dispatchSettings({ hedge: { maxDelay: '5ms' } }), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /hedge\.maxDelay: expected a duration >= hedge\.minDelay \(10 ms\)/ })
  t.equal(dispatchSettings({}).deadline, 0)
  t.same(dispatchSettings({}).retryThrottle, { maxTokens: 10, tokenRatio: 1 })
  t.same(dispatchSettings({ retryThrottle: { tokenRatio: 0.1 } }).retryThrottle, { maxTokens: 10, tokenRatio: 0.1 })
  t.equal(dispatchSettings({ retryThrottle: false }).retryThrottle, undefined)
  t.equal(dispatchSettings({ deadline: '2s' }).deadline, 2000)
})

t.test('inboundDeadline: on with a 5 min clamp by default; false turns it off; a bad max names the field', async (t) => {
  t.same(normalizeOptions({ service: { name: 's' } }).inboundDeadline, { max: 300_000 })
  t.same(normalizeOptions({ service: { name: 's' }, inboundDeadline: { max: '30s' } }).inboundDeadline, { max: 30_000 })
  t.equal(normalizeOptions({ service: { name: 's' }, inboundDeadline: false }).inboundDeadline, false)
  const err = codeAndField({ service: { name: 's' }, inboundDeadline: { max: 'soon' } })
  t.equal(err.code, 'FST_REG_CONSUL_INVALID_OPTION')
  t.match(err.message, /inboundDeadline\.max/)
  t.match(codeAndField({ service: { name: 's' }, inboundDeadline: true }).message, /inboundDeadline: expected false or an object/)
})
