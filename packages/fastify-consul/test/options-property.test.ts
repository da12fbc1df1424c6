import fc from 'fast-check'
import Fastify from 'fastify'
import t from 'tap'
import consulPlugin from '../src/index.js'
import { normalizeOptions } from '../src/options.js'

// Drill R8: whatever garbage arrives as options, the outcome is either an accepted, normalised value
// that satisfies Consul's rules, or FST_REG_CONSUL_INVALID_OPTION. Never a crash, never a silent accept.

const META_KEY = /^(?!consul-)[A-Za-z0-9_-]{1,128}$/

function validMeta (meta: unknown): boolean {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return false
  const entries = Object.entries(meta)
  return entries.length <= 64 && entries.every(([k, v]) => META_KEY.test(k) && typeof v === 'string' && Buffer.byteLength(v) <= 512)
}

const anything = fc.oneof(fc.anything(), fc.string(), fc.integer(), fc.double(), fc.constant(null))
// Each field is mostly valid and sometimes hostile, so both outcomes are exercised in every run.
const mostly = <T, U>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>): fc.Arbitrary<T | U | undefined> =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: hostile, weight: 1 })
const port = mostly(fc.integer({ min: 1, max: 65535 }), fc.oneof(fc.integer({ min: -10, max: 70_000 }), fc.double(), fc.string()))
const metaKey = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), fc.constantFrom('consul-x', 'a.b', ''), fc.string({ maxLength: 140 }))
const meta = mostly(
  fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), fc.string({ maxLength: 40 }), { maxKeys: 5 }),
  fc.oneof(fc.dictionary(metaKey, fc.oneof(fc.string({ maxLength: 600 }), fc.integer()), { maxKeys: 70 }), anything)
)
const weights = mostly(
  fc.record({ passing: fc.integer({ min: 1, max: 65535 }), warning: fc.integer({ min: 0, max: 65535 }) }),
  fc.oneof(fc.record({ passing: fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.double()), warning: fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.string()) }), anything)
)
const address = mostly(fc.constantFrom('10.0.0.1', '::1', 'svc.local'), fc.oneof(fc.constantFrom('0.0.0.0', '::', '[::]', ''), anything))
const duration = mostly(fc.oneof(fc.constantFrom('10s', '1m', '500ms', '1.5s'), fc.integer({ min: 1, max: 100_000 })), fc.oneof(fc.constantFrom('10 seconds', '-1s', '0', ''), fc.integer({ min: -5, max: 0 }), anything))
const check = mostly(
  fc.oneof(
    fc.constant(false),
    fc.record({ type: fc.constant('http'), interval: duration, timeout: duration }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('tcp'), interval: duration, timeout: duration }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('ttl'), ttl: duration }, { requiredKeys: ['type'] })
  ),
  fc.oneof(fc.record({ type: fc.constantFrom('http', 'grpc'), ttl: duration }), anything)
)
const name = fc.oneof({ arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), weight: 8 }, { arbitrary: fc.oneof(fc.constantFrom('a b', ''), fc.string()), weight: 1 })
const options = fc.record({
  service: fc.oneof({ arbitrary: fc.record({ name, port, meta, weights, address }, { requiredKeys: ['name'] }), weight: 9 }, { arbitrary: anything, weight: 1 }),
  check,
  deregisterTimeout: mostly(fc.integer({ min: 1, max: 10_000 }), fc.oneof(fc.integer({ min: -5, max: 0 }), anything)),
  retry: mostly(fc.record({ base: fc.integer({ min: 1, max: 1000 }), cap: fc.integer({ min: 1000, max: 5000 }) }), fc.oneof(fc.record({ base: fc.integer({ min: -1, max: 1000 }), cap: fc.integer({ min: -1, max: 1000 }) }), anything))
}, { requiredKeys: ['service'] })

t.test('normalizeOptions: every input is either valid by Consul\'s rules or a coded error', async (t) => {
  let accepted = 0
  let rejected = 0
  fc.assert(fc.property(options, (input) => {
    let out
    try {
      out = normalizeOptions(input)
    } catch (err) {
      if ((err as { code?: string }).code !== 'FST_REG_CONSUL_INVALID_OPTION') throw err
      rejected++
      return
    }
    accepted++
    const s = out.service
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s.name)) throw new Error(`accepted name ${JSON.stringify(s.name)}`)
    if (s.port !== undefined && !(Number.isInteger(s.port) && s.port >= 1 && s.port <= 65535)) throw new Error(`accepted port ${s.port}`)
    if (s.meta !== undefined && !validMeta(s.meta)) throw new Error('accepted invalid meta')
    if (s.weights !== undefined && !(Number.isInteger(s.weights.passing) && s.weights.passing >= 1 && s.weights.passing <= 65535 && Number.isInteger(s.weights.warning) && s.weights.warning >= 0 && s.weights.warning <= 65535)) throw new Error('accepted invalid weights')
    if (s.address !== undefined && /^(0\.0\.0\.0|::|\[::\]|)$/.test(s.address)) throw new Error(`accepted address ${s.address}`)
    const c = out.check
    if (c.type !== 'none') {
      const durations = c.type === 'ttl' ? [c.ttl, c.deregisterCriticalServiceAfter] : [c.interval, c.timeout, c.deregisterCriticalServiceAfter]
      if (!durations.every((d) => Number.isFinite(d) && d > 0)) throw new Error('accepted a non-positive duration')
    }
    if (!(out.deregisterTimeout >= 1) || !(out.retry.cap >= out.retry.base)) throw new Error('accepted invalid timing')
  }), { numRuns: 2000, seed: 20261125 })
  t.ok(accepted > 0 && rejected > 0, `both outcomes exercised (accepted ${accepted}, rejected ${rejected})`)
})

t.test('through the plugin, invalid options fail ready() with the code, never a crash', async (t) => {
  await fc.assert(fc.asyncProperty(options, async (input) => {
    const app = Fastify()
    app.register(consulPlugin, input as never)
    try {
      await app.ready()
    } catch (err) {
      if ((err as { code?: string }).code !== 'FST_REG_CONSUL_INVALID_OPTION') throw err
    } finally {
      await app.close()
    }
  }), { numRuns: 150, seed: 20261125 })
  t.pass()
})
