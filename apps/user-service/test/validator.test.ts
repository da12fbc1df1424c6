import { Type } from '@sinclair/typebox'
import t from 'tap'
import { typeboxValidatorCompiler } from '../src/validator.js'

// The routes' own schemas all carry descriptions (see users.test.ts); this covers the compiler on its own.

function compile (schema: Parameters<typeof typeboxValidatorCompiler>[0]['schema']): ReturnType<typeof typeboxValidatorCompiler> {
  return typeboxValidatorCompiler({ schema, method: 'POST', url: '/x', httpPart: 'body' })
}

t.test('valid data passes through unchanged, invalid data never is coerced', async (t) => {
  const validate = compile(Type.Object({ n: Type.Number() }))
  const data = { n: 1 }
  t.same(validate(data), { value: data })
  t.equal((validate(data) as { value: unknown }).value, data, 'the same object: nothing is copied or stripped')
  t.match(validate({ n: '1' }), { error: [{ instancePath: '/n' }] }, '"1" is not coerced to 1')
})

t.test('without a description the message is TypeBox\'s own', async (t) => {
  const validate = compile(Type.Object({ n: Type.Number() }))
  t.same(validate({ n: 'one' }), {
    error: [{ keyword: 'Number', instancePath: '/n', schemaPath: '', params: {}, message: 'Expected number' }]
  })
})
