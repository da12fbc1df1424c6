import { readFileSync } from 'node:fs'
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
