import t from 'tap'
import { goDuration, normalizeOptions, toMs } from '../src/options.js'

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
  t.same(o.check, { type: 'http', path: undefined, interval: 10_000, timeout: 5_000, deregisterCriticalServiceAfter: 60_000, tlsSkipVerify: undefined, successBeforePassing: undefined, failuresBeforeCritical: undefined })
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
  t.same(normalizeOptions({ service: { name: 's' }, check: { type: 'tcp', interval: 1500, timeout: '0.5s' } }).check, { type: 'tcp', interval: 1500, timeout: 500, deregisterCriticalServiceAfter: 60_000 })
  t.same(normalizeOptions({ service: { name: 's' }, check: false }).check, { type: 'none' })
  t.match(normalizeOptions({ service: { name: 's' }, check: { type: 'http', path: '/ready', tlsSkipVerify: true, successBeforePassing: 2, failuresBeforeCritical: 3 } }).check, { path: '/ready', tlsSkipVerify: true, successBeforePassing: 2, failuresBeforeCritical: 3 })
})

t.test('durations', async (t) => {
  t.equal(toMs('250ms'), 250)
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
  ['no service', {}, /service.*required/],
  ['empty name', { service: { name: '' } }, /service\.name/],
  ['name with a space', { service: { name: 'a b' } }, /service\.name/],
  ['unknown top-level option', { service: { name: 's' }, regster: true }, /regster|options/],
  ['unknown service field', { service: { name: 's', nmae: 'x' } }, /service/],
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
  ['check type unknown', { service: { name: 's' }, check: { type: 'grpc' } }, /check.*"http" \| "tcp" \| "ttl"/],
  ['check interval junk', { service: { name: 's' }, check: { type: 'http', interval: '10 seconds' } }, /check/],
  ['ttl field on http', { service: { name: 's' }, check: { type: 'http', ttl: '5s' } }, /check/],
  ['check path without slash', { service: { name: 's' }, check: { type: 'http', path: 'health' } }, /check/],
  ['deregisterTimeout 0', { service: { name: 's' }, deregisterTimeout: 0 }, /deregisterTimeout.*positive/],
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
