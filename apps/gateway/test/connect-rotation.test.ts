import { connectLeaf, rotateConnectCa, startConsul, untilLeafOfRoot } from '@reg/testkit'
import t from 'tap'
import { startConnectFleet } from './fixtures/connect-fleet.js'
import { loadUntil } from './fixtures/fleet.js'
import { whileRunning } from './fixtures/server.js'

// #24's "CA rotation under load loses nothing", through the built gateway: an operator sets a new CA key
// (`PUT /v1/connect/ca/configuration`); Consul 1.8 keeps the old root (cross-signed) and re-issues every
// leaf within about 30 s. A file of its own: the re-issue alone can take half a minute.

const agent = await startConsul({ t })

t.test('REG_CONNECT=true: a CA rotation under load through the gateway loses nothing, and the replicas then serve leaves of the new root', async (t) => {
  const { base, all, replicaPorts } = await startConnectFleet(t, agent)
  let stopLoad!: () => void
  const load = loadUntil(base, new Promise<void>((resolve) => { stopLoad = resolve }), 4)
  const { cert: newRoot } = await rotateConnectCa(agent)
  const probe = await connectLeaf(agent, 'probe')
  for (const [n, port] of replicaPorts.entries()) {
    const took = await whileRunning(all, untilLeafOfRoot({ port, root: newRoot, client: probe, timeout: 90_000 }))
    t.comment(`replica ${n + 1} presents a leaf of the new root ${took} ms after the rotation was active`)
  }
  // And on past it: new connections from the gateway now meet the re-issued leaves.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  stopLoad()
  const statuses = await load
  const total = [...statuses.values()].reduce((a, b) => a + b, 0)
  t.ok(total > 0, `load ran across the rotation (${total} requests)`)
  t.same([...statuses.keys()], [200], `every request through the gateway across the CA rotation was served: ${JSON.stringify(Object.fromEntries(statuses))}`)

  for (const p of all) p.child.kill('SIGTERM')
  for (const p of all) t.same(await p.exited, { code: 0, signal: null }, 'a graceful shutdown exits 0')
})
