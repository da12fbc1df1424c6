import t from 'tap'
import { defaultPseudonym, isPseudonym, receivedBy, refuseLoops, viaElement } from '../src/via.js'

// The Via rules alone; test/loop.test.ts drives them through a gateway that Consul sends to itself.

t.test('receivedBy: the second word of every element, comments (nested, with commas) ignored', async (t) => {
  t.same(receivedBy('1.0 fred, 1.1 p.example.net'), ['fred', 'p.example.net'], 'RFC 9110 §7.6.3\'s example')
  t.same(receivedBy('1.1 a (Apache/2.4, mod_proxy (x, 1.1 gw))  ,HTTP/2 b:8080\t(c)'), ['a', 'b:8080'])
  t.same(receivedBy(['1.1 a', '2 b']), ['a', 'b'], 'repeated header lines are one list')
  t.same(receivedBy('(only a comment), ,1.1'), [], 'elements without a received-by name nobody')
  t.same(receivedBy(undefined), [])
  t.same(receivedBy('1.1 a (x \\) , 1.1 evil), 1.1 b'), ['a', 'b'], 'a quoted-pair does not close a comment')
  t.same(receivedBy('1.1 a (unclosed, 1.1 b'), ['a'], 'an unclosed comment runs to the end')
  // 16 KB of nesting, as a client could send: one pass, whatever the depth.
  const deep = `1.1 a ${'('.repeat(8000)}${')'.repeat(8000)}, 1.1 b`
  t.same(receivedBy(deep), ['a', 'b'], 'deeply nested comments')
})

t.test('viaElement: the version the request came in with, then the pseudonym', async (t) => {
  t.equal(viaElement('1.1', 'gw'), '1.1 gw')
  t.equal(viaElement('1.0', 'gw'), '1.0 gw')
  t.equal(viaElement('2.0', 'gw'), '2 gw', 'HTTP/2 is "2"')
})

t.test('pseudonyms: RFC 9110 tokens; the default is the service id, fixed to the bound port', async (t) => {
  t.ok(isPseudonym('gateway-host-8080'))
  t.ok(isPseudonym("a!#$%&'*+-.^_`|~9"))
  for (const bad of ['', 'a b', 'a,b', '(a)', 'a:1', 'é', 1]) t.notOk(isPseudonym(bad), JSON.stringify(bad))
  t.equal(defaultPseudonym('gateway', 'gw-1', 8080), 'gw-1', 'a given service id wins')
  t.equal(defaultPseudonym('gateway', 'gw/1 (x)', 8080), 'gw-1--x-', 'made a token')
  t.equal(defaultPseudonym('gateway', undefined, 8080, 'box'), 'gateway-box-8080', 'as @reg/fastify-consul derives the service id')
  t.equal(defaultPseudonym('gateway', undefined, undefined, 'box'), 'gateway-box', 'before listen')
  t.match(defaultPseudonym('gateway', undefined, 1), /^gateway-.+-1$/, 'the host name by default')
})

t.test('refuseLoops: 508 FST_REG_GATEWAY_LOOP_DETECTED only when Via names this gateway', async (t) => {
  let pseudonym = 'gw-a'
  const hook = refuseLoops(() => pseudonym)
  const run = (via: string | undefined): Promise<unknown> => new Promise((resolve) => {
    hook.call({} as never, { headers: { via } } as never, {} as never, resolve as never)
  })
  t.equal(await run(undefined), undefined, 'no Via: first pass')
  t.equal(await run('1.1 gw-b, 1.1 gw-c'), undefined, 'other gateways in a chain')
  t.equal(await run('1.1 gw-ab'), undefined, 'a name is matched whole')
  t.match(await run('1.1 gw-b, 1.1 gw-a'), { code: 'FST_REG_GATEWAY_LOOP_DETECTED', statusCode: 508 })
  pseudonym = 'gw-b'
  t.match(await run('1.1 gw-b'), { code: 'FST_REG_GATEWAY_LOOP_DETECTED' }, 'read per request')
})
