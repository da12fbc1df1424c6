import { readFileSync } from 'node:fs'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import t from 'tap'
import { normalizeOptions } from '../src/options.js'
import { closest, fieldOf, firstProblem, objectFormProblem, unknownOption } from '../src/validate.js'

// One validation dialect for both plugins: this package's src/validate.ts is fastify-consul's
// src/util/validate.ts, byte for byte (the published packages do not depend on each other).

t.test('the same file as @reg/fastify-consul\'s validation', async (t) => {
  const ours = readFileSync(new URL('../src/validate.ts', import.meta.url), 'utf8')
  const theirs = readFileSync(new URL('../../fastify-consul/src/util/validate.ts', import.meta.url), 'utf8')
  t.equal(ours, theirs, 'copy packages/fastify-consul/src/util/validate.ts over src/validate.ts after changing it')
})

t.test('fields as the user wrote them', async (t) => {
  t.equal(fieldOf('', 'checks'), 'checks')
  t.equal(fieldOf('checks', 'db'), 'checks.db')
  t.equal(fieldOf('checks', 'db.main'), 'checks["db.main"]')
  t.equal(fieldOf('list', '0'), 'list[0]')
  t.equal(closest('detial', ['details', 'path']), 'details')
  t.equal(closest('zzz', ['details', 'path']), undefined)
  t.match(unknownOption('zzz', ['details', 'path']), /known option \(details, path\); "zzz" is unknown/)
})

t.test('the plugin\'s errors in that dialect: named as written, a guess for a slip, what was received', async (t) => {
  t.throws(() => normalizeOptions({ checks: { 'db.main': { fn: () => {}, timeout: '10 s' } } }),
    { code: 'FST_REG_HEALTH_INVALID_OPTION', message: /option checks\["db\.main"\]\.timeout: expected a duration .* received '10 s'$/ })
  t.throws(() => normalizeOptions({ detail: false }),
    { message: /option detail: expected a known option: "detail" is unknown, did you mean `details`\?, received false$/ })
  t.throws(() => normalizeOptions({ underPressure: { maxEventLoopDelay: -1 } }),
    { message: /option underPressure\.maxEventLoopDelay: expected milliseconds, 0 or more \(0 turns it off\), received -1$/ })
  t.throws(() => normalizeOptions({ checks: { db: { fn: () => {}, timeout: 60_000 } } }, 10_000),
    { message: /option checks\.db\.timeout: expected less than Fastify's pluginTimeout \(10000 ms\)/ })
})

t.test('objectFormProblem checks only an object form', async (t) => {
  const check = TypeCompiler.Compile(Type.Object({ max: Type.Integer({ description: 'an integer' }) }))
  t.match(objectFormProblem(check, { max: 'x' }, 'limit'), { field: 'limit.max', expected: 'an integer', value: 'x' })
  t.equal(objectFormProblem(check, { max: 1 }, 'limit'), undefined)
  for (const other of [false, null, [1], 'x', undefined]) t.equal(objectFormProblem(check, other, 'limit'), undefined, String(other))
  t.match(firstProblem(check, {}), { field: 'max', expected: 'an integer (it is required)', value: undefined })
})
