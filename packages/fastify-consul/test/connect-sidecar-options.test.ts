import t from 'tap'
import { normalizeOptions } from '../src/options.js'
import { findUpstream, sidecarConnectBlock } from '../src/connect/sidecar.js'
import { buildDefinition } from '../src/registration/definition.js'

// `connect: { sidecar }` (#24, the sidecar path): validation that names the field as written, and the
// registration's Connect block. What Consul does with it is in connect-sidecar.test.ts, on a real agent.

function refusal (connect: unknown, check?: unknown): { code?: string, message: string } {
  try {
    normalizeOptions({ service: { name: 'gateway' }, connect, ...(check !== undefined && { check }) })
  } catch (err) {
    return err as { code?: string, message: string }
  }
  throw new Error('expected normalizeOptions to throw')
}

const up = (destinationName: string, localBindPort: number, extra: object = {}): object => ({ destinationName, localBindPort, ...extra })

t.test('bad input: FST_REG_CONSUL_INVALID_OPTION naming the field as written', async (t) => {
  const cases: Array<[unknown, string]> = [
    [{ sidecar: { upstreams: [up('a', 9001), up('b', 0)] } }, 'connect.sidecar.upstreams[1].localBindPort'],
    [{ sidecar: { upstreams: [up('a', 9001), up('b', 70000)] } }, 'connect.sidecar.upstreams[1].localBindPort'],
    [{ sidecar: { upstreams: [{ destinationName: 'a' }] } }, 'connect.sidecar.upstreams[0].localBindPort'],
    [{ sidecar: { upstreams: [up('a b', 9001)] } }, 'connect.sidecar.upstreams[0].destinationName'],
    [{ sidecar: { upstreams: [up('a', 9001, { datacenter: 'dc 1' })] } }, 'connect.sidecar.upstreams[0].datacenter'],
    [{ sidecar: { upstreams: [up('a', 9001, { localBindAddress: 'localhost' })] } }, 'connect.sidecar.upstreams[0].localBindAddress'],
    [{ sidecar: { upstreams: [up('a', 9001, { localBindPrt: 1 })] } }, 'connect.sidecar.upstreams[0].localBindPrt'],
    [{ sidecar: { port: 'x' } }, 'connect.sidecar.port'],
    [{ sidecar: { upstreams: {} } }, 'connect.sidecar.upstreams'],
    [{ sidecar: 'yes' }, 'connect.sidecar'],
    [{ sidecar: {}, native: true }, 'connect.native'],
    // Consul 1.8.7 accepts these (checked by hand); the proxy then cannot bind both, or binds over its own port.
    [{ sidecar: { upstreams: [up('a', 9001), up('b', 9001)] } }, 'connect.sidecar.upstreams[1].localBindPort'],
    [{ sidecar: { port: 9001, upstreams: [up('a', 9001)] } }, 'connect.sidecar.upstreams[0].localBindPort'],
    [{ sidecar: { upstreams: [up('a', 9001), up('a', 9002)] } }, 'connect.sidecar.upstreams[1].destinationName'],
    [{ sidecar: { upstreams: [up('a', 9001, { datacenter: 'dc2' }), up('a', 9002, { datacenter: 'dc2' })] } }, 'connect.sidecar.upstreams[1].destinationName'],
    // Neither a connectNative() handle nor the sidecar form.
    [{ native: true }, 'connect'],
    ['on', 'connect']
  ]
  for (const [connect, field] of cases) {
    const err = refusal(connect)
    t.equal(err.code, 'FST_REG_CONSUL_INVALID_OPTION', field)
    t.ok(err.message.includes(`option ${field}:`), `names ${field}: ${err.message}`)
  }
})

t.test('valid forms: defaults applied, any check allowed (the app stays on plain HTTP)', async (t) => {
  const o = normalizeOptions({ service: { name: 'gateway' }, connect: { sidecar: {} } })
  t.same(o.sidecar, { port: undefined, upstreams: [] })
  t.equal(o.connect, undefined, 'not Connect-native')
  t.equal(o.check.type, 'http', 'the default HTTP check stays: the sidecar does not put TLS in front of the app\'s own port')
  const full = normalizeOptions({
    service: { name: 'gateway' },
    connect: { sidecar: { port: 21500, upstreams: [up('users', 9001), up('users', 9002, { datacenter: 'dc2', localBindAddress: '::1' })] } }
  })
  t.same(full.sidecar, {
    port: 21500,
    upstreams: [
      { destinationName: 'users', localBindAddress: '127.0.0.1', localBindPort: 9001, datacenter: undefined },
      { destinationName: 'users', localBindAddress: '::1', localBindPort: 9002, datacenter: 'dc2' }
    ]
  })
  t.same(sidecarConnectBlock(full.sidecar!), {
    SidecarService: {
      Port: 21500,
      Proxy: {
        Upstreams: [
          { DestinationName: 'users', LocalBindAddress: '127.0.0.1', LocalBindPort: 9001 },
          { DestinationName: 'users', LocalBindAddress: '::1', LocalBindPort: 9002, Datacenter: 'dc2' }
        ]
      }
    }
  })
  t.same(sidecarConnectBlock(o.sidecar!), { SidecarService: { Proxy: { Upstreams: [] } } }, 'no Port: Consul picks one from its sidecar range')
  const { body } = buildDefinition({ service: { name: 'gateway' }, check: { type: 'none' }, address: '127.0.0.1', port: 3000, healthPath: '/health', initialStatus: 'passing', bootId: 'b', connect: sidecarConnectBlock(full.sidecar!) })
  t.same(body.Connect, sidecarConnectBlock(full.sidecar!), 'the block goes into the registration as built')
})

t.test('findUpstream: by name, the local datacenter first, a coded error listing what exists', async (t) => {
  const settings = normalizeOptions({ service: { name: 'g' }, connect: { sidecar: { upstreams: [up('users', 9001), up('users', 9002, { datacenter: 'dc2' }), up('billing', 9003, { datacenter: 'dc3' })] } } }).sidecar!
  t.equal(findUpstream(settings, 'users').localBindPort, 9001, 'the local one when the name is listed for several datacenters')
  t.equal(findUpstream(settings, 'users', 'dc2').localBindPort, 9002)
  t.equal(findUpstream(settings, 'billing').localBindPort, 9003, 'the only one, whatever its datacenter')
  const two = normalizeOptions({ service: { name: 'g' }, connect: { sidecar: { upstreams: [up('users', 9001, { datacenter: 'dc2' }), up('users', 9002, { datacenter: 'dc3' })] } } }).sidecar!
  t.throws(() => findUpstream(two, 'users'), { code: 'FST_REG_CONNECT_UNKNOWN_UPSTREAM', message: /users \(dc2\), users \(dc3\)/ }, 'ambiguous without a datacenter')
  t.throws(() => findUpstream(settings, 'users', 'dc9'), { code: 'FST_REG_CONNECT_UNKNOWN_UPSTREAM', message: /"users" in datacenter "dc9".*users, users \(dc2\), billing \(dc3\)/ })
  t.throws(() => findUpstream({ port: undefined, upstreams: [] }, 'users'), { code: 'FST_REG_CONNECT_UNKNOWN_UPSTREAM', message: /lists nothing$/ })
  t.throws(() => findUpstream(undefined, 'users'), { code: 'FST_REG_CONNECT_UNKNOWN_UPSTREAM', message: /without connect: \{ sidecar \}/ })
})
