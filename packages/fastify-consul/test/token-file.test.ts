import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startConsul } from '@reg/testkit'
import t from 'tap'
import { buildApp, stateBecomes } from './fixtures/app.js'

const MASTER = 'aaaaaaaa-0000-4000-8000-000000000001'
const agent = await startConsul({ t, acl: { masterToken: MASTER } })

async function acl (path: string, body: unknown, method = 'PUT'): Promise<{ SecretID: string, AccessorID: string }> {
  const res = await fetch(`${agent.url}/v1/acl/${path}`, { method, headers: { 'x-consul-token': MASTER }, body: body === undefined ? undefined : JSON.stringify(body) })
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return await res.json() as { SecretID: string, AccessorID: string }
}

t.test('a rotated token file is read again: the next registration uses the new token', async (t) => {
  await acl('policy', { Name: 'rotating', Rules: 'service "rotating" { policy = "write" }\nnode_prefix "" { policy = "read" }' })
  const first = await acl('token', { Policies: [{ Name: 'rotating' }] })
  const second = await acl('token', { Policies: [{ Name: 'rotating' }] })
  const dir = await mkdtemp(join(tmpdir(), 'reg-token-'))
  const rotated = join(dir, 'rotated')
  const kept = join(dir, 'kept')
  await writeFile(rotated, `${first.SecretID}\n`)
  await writeFile(kept, `${first.SecretID}\n`)

  const { app } = await buildApp(t, { service: { name: 'rotating', id: 'rotating-1' }, failFast: true, consul: { address: agent.address, tokenFile: rotated } })
  // The negative control: the same start, but its file is never rotated.
  const { app: stale } = await buildApp(t, { service: { name: 'rotating', id: 'rotating-2' }, register: false, consul: { address: agent.address, tokenFile: kept } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stale.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')

  // Vault rotates: the new token goes into the file, then the old one is revoked.
  await writeFile(rotated, `${second.SecretID}\n`)
  await acl(`token/${first.AccessorID}`, undefined, 'DELETE')
  // Files are looked at again at most every 2 s.
  await sleep(2100)
  await t.resolves(app.consul.register(), 'the new token registers')
  await t.rejects(stale.consul.register(), { code: 'FST_REG_CONSUL_ACL_DENIED' }, 'the revoked token no longer does')
})
