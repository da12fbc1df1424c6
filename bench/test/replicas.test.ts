import { fileURLToPath } from 'node:url'
import { startConsul } from '@reg/testkit'
import t from 'tap'
import { startReplicas, USER_SERVICE } from '../src/replicas.js'

const EXITS = fileURLToPath(new URL('fixtures/exit-at-once.js', import.meta.url))

t.test('startReplicas(): a replica that dies before passing fails the start at once, and says why', async (t) => {
  const agent = await startConsul({ t })
  for (const [by, how] of [['code', 'exited 3'], ['signal', 'exited SIGKILL']] as const) {
    const started = Date.now()
    let message = ''
    await startReplicas(agent, EXITS, 2, { EXIT_BY: by }).catch((err: Error) => { message = err.message })
    t.match(message, /^replica 1 exited before every replica passed/, `${by}: the death ends the wait`)
    t.match(message, new RegExp(`replica 0 on port \\d+: running\nreplica 1 on port \\d+: ${how}\ncannot listen on port \\d+`), `${by}: how each replica ended, and its last words`)
    t.match(message, /--- consul agent log ---/, 'and the agent\'s log')
    t.ok(Date.now() - started < 30_000, 'not the 60 s bound')
  }
})

t.test('startReplicas(): replicas that pass are returned running, restart() and stop() leave none behind', async (t) => {
  const agent = await startConsul({ t })
  const set = await startReplicas(agent, USER_SERVICE, 2)
  t.ok(set.replicas.every((r) => r.child.exitCode === null), 'running')
  const first = set.replicas[0]!.child
  t.equal(await set.restart(0, 'SIGTERM'), 0, 'a graceful exit')
  t.not(set.replicas[0]!.child, first, 'a new process in its place')
  await set.stop()
  t.ok(set.replicas.every((r) => r.child.exitCode !== null || r.child.signalCode !== null), 'every replica has exited')
  const left = await (await fetch(`${agent.url}/v1/agent/services`)).json() as Record<string, unknown>
  t.same(Object.keys(left), [], 'and nothing is left registered')
})
