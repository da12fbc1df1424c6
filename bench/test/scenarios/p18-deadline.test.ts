import { startConsul } from '@reg/testkit'
import t from 'tap'
import { startReplicas, TAIL_SERVER } from '../../src/replicas.js'
import { sidesRound } from '../fixtures/smoke.js'

// #23's tail scenarios run against real replicas, our gateway and HAProxy. No figure is judged (a smoke
// round on a shared box measures nothing); what is checked is the harness: every side ran, the windows
// are finite, and the counters at the replicas really count.
t.test('P18 runs one smoke round: every side ran, with finite windows', async (t) => {
  const report = await sidesRound(t, 'P18', ['P18 round 1 ours', 'P18 round 1 no-deadline'])
  // The negative control of P18's counter: a caller without a budget whose request was stuck on the
  // frozen replica waits out the 2 s per-try timeout and is retried elsewhere long after its deadline;
  // the replicas must count that. Least-request may send no request there in a short smoke round
  // (then no side waited 2 s, and there is nothing to check here: a loaded box can still make a try a
  // few ms late without any stall, so no count is required either way; the test below pins the counter).
  const late = report.figures.find((f) => f.unit === 'tries')!
  const max = report.figures.find((f) => f.unit === 'ms')!
  if (max.baseline.median > 1000) t.ok(late.baseline.median > 0, 'P18: late tries are counted at the replicas (negative control)')
  else t.comment(`P18: no budget-less request was stuck this round (max ${max.baseline.median.toFixed(0)} ms); ${late.baseline.median} late tries`)
})

// The replicas' late-try counter on its own, deterministically: the smoke round above counts late tries
// only when a budget-less request happened to meet the frozen replica, which a short round may not do.
t.test('the tail replica counts a try that reaches it after its caller\'s deadline, and only that one', async (t) => {
  const agent = await startConsul()
  const set = await startReplicas(agent, TAIL_SERVER, 1)
  t.teardown(async () => { await set.stop(); await agent.stop() })
  const base = `http://127.0.0.1:${set.ports[0]!}`
  const send = async (headers: Record<string, string>): Promise<void> => { await (await fetch(`${base}/users`, { headers })).arrayBuffer() }
  await send({ 'x-bench-deadline-at': String(Date.now() - 1000) })
  await send({ 'x-bench-deadline-at': String(Date.now() + 60_000) })
  await send({})
  t.same(await (await fetch(`${base}/_tries`)).json(), { received: 3, late: 1 }, 'the one past its deadline, not the one in time nor the one without')
})
