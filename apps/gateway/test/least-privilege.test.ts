import { readFileSync } from 'node:fs'
import { connectNative } from '@reg/fastify-consul'
import { startConsul } from '@reg/testkit'
import userService from '@reg/user-service'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { buildGateway, instancesBecome, until } from './fixtures/app.js'

// Both sample apps on an agent whose default policy is deny, each with a token holding exactly the
// policy @reg/fastify-consul's README documents: the policies are read from the README itself, so the
// documentation cannot drift from what is proven here.

const MASTER = 'b0b0b0b0-0000-4000-8000-00000000ac1d'
const README = readFileSync(new URL('../../../packages/fastify-consul/README.md', import.meta.url), 'utf8')

/** The HCL block of the README that starts with `# policy: <name>`. */
function documentedPolicy (name: string): string {
  const block = README.split('```hcl\n').map((b) => b.split('```')[0]!).find((b) => b.startsWith(`# policy: ${name}\n`))
  if (block === undefined) throw new Error(`the README documents no policy for ${name}`)
  return block
}

const agent = await startConsul({ t, acl: { masterToken: MASTER } })

async function acl<T> (path: string, body: unknown): Promise<T> {
  const res = await fetch(`${agent.url}/v1/acl/${path}`, { method: 'PUT', headers: { 'x-consul-token': MASTER }, body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

async function tokenFor (policy: string, rules: string): Promise<string> {
  await acl('policy', { Name: policy, Rules: rules })
  return (await acl<{ SecretID: string }>('token', { Policies: [{ Name: policy }] })).SecretID
}

async function userServiceWith (token: string, register = true): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(userService, { serviceId: `users-${token.slice(0, 8)}`, register, consul: { address: agent.address, token }, health: { underPressure: { maxEventLoopDelay: 0 } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return app
}

t.test('user-service and the gateway work with exactly the documented least-privilege policies', async (t) => {
  const users = await userServiceWith(await tokenFor('user-service', documentedPolicy('user-service')))
  await until(() => users.consul.state === 'registered', 'user-service registered')

  const gateway = await buildGateway(t, { consul: { address: agent.address, token: await tokenFor('gateway', documentedPolicy('gateway')) } })
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  await until(() => gateway.consul.state === 'registered', 'gateway registered')
  await instancesBecome(gateway, [users.consul.registration!.id])

  const created = await gateway.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })
  t.equal(created.statusCode, 201, 'the gateway discovered user-service and proxied to it')
  t.equal(created.headers['x-instance-id'], users.consul.registration!.id)

  // Both leave cleanly too: deregistering is service:write on their own names.
  await gateway.close()
  await users.close()
  t.equal(gateway.consul.state, 'deregistered')
  t.equal(users.consul.state, 'deregistered')
})

t.test('a token without service:write on its name: FST_REG_CONSUL_ACL_DENIED naming the permission', async (t) => {
  const readOnly = await tokenFor('read-only', 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }')
  const users = await userServiceWith(readOnly, false)
  const err = await users.consul.register().then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_REG_CONSUL_ACL_DENIED')
  // The contract here is the content: the operator learns which permission to grant.
  t.match(err?.message, /service:write/)
  t.equal(users.consul.state, 'failed')
})

t.test('REG_CONNECT: the same documented policies cover Connect (leaf, authorize, the intentions watch, dialing)', async (t) => {
  // user-service Connect-native, the gateway an edge calling it with its own leaf, each with exactly
  // its documented policy: `service:write` on its own name covers its leaf certificate, `authorize` as
  // that target and the intentions watch; `service:read` on user-service covers dialing it.
  const usersConsul = { address: agent.address, token: await tokenFor('user-service-connect', documentedPolicy('user-service')) }
  const native = await connectNative({ service: 'user-service', consul: usersConsul })
  const users = Fastify({ https: native.https })
  t.teardown(() => users.close())
  await users.register(userService, { serviceId: 'users-native', connect: native, consul: usersConsul, health: { underPressure: { maxEventLoopDelay: 0 } } })
  await users.listen({ host: '127.0.0.1', port: 0 })
  await until(() => users.consul.state === 'registered', 'Connect-native user-service registered')

  const gatewayConsul = { address: agent.address, token: await tokenFor('gateway-connect', documentedPolicy('gateway')) }
  const edge = await connectNative({ service: 'gateway', consul: gatewayConsul, inbound: false })
  const gateway = await buildGateway(t, { consul: gatewayConsul, connect: edge, serviceId: 'gateway-connect' })
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  await instancesBecome(gateway, ['users-native'])
  // With ACLs on and a default policy of deny, Connect's default is deny too: nothing passes until an
  // operator allows it. A decision at all (a coded 403, not a 503 "cannot authorize") shows the token
  // may ask `authorize`.
  const before = await gateway.inject('/users')
  t.equal(before.statusCode, 403, 'no intention under default-deny ACLs: denied')
  t.equal(before.json().code, 'FST_REG_CONNECT_FORBIDDEN')

  const intention = async (method: string, path: string, action: 'allow' | 'deny'): Promise<string> => {
    const res = await fetch(`${agent.url}/v1/connect/intentions${path}`, { method, headers: { 'x-consul-token': MASTER }, body: JSON.stringify({ SourceName: 'gateway', DestinationName: 'user-service', Action: action }) })
    if (!res.ok) throw new Error(`intention ${action}: ${res.status} ${await res.text()}`)
    return method === 'POST' ? (await res.json() as { ID: string }).ID : path.slice(1)
  }
  const untilStatus = async (status: number): Promise<{ statusCode: number, json: () => { code?: string } }> => {
    const deadline = Date.now() + 5000
    let answer = await gateway.inject('/users')
    while (answer.statusCode !== status && Date.now() < deadline) answer = await gateway.inject('/users')
    return answer
  }
  // The operator's token writes intentions; the apps' tokens only read what concerns them.
  const id = await intention('POST', '', 'allow')
  t.equal((await untilStatus(200)).statusCode, 200, 'allowed: the gateway dialed the Connect-native replica with its leaf and was authorized (within a 5 s bound)')
  const created = await gateway.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })
  t.equal(created.statusCode, 201, 'and writes go through too')
  await intention('PUT', `/${id}`, 'deny')
  const denied = await untilStatus(403)
  t.equal(denied.statusCode, 403, 'the deny reaches the replica\'s decisions through its own token')
  t.equal(denied.json().code, 'FST_REG_CONNECT_FORBIDDEN')
})
