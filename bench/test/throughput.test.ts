import Fastify from 'fastify'
import t from 'tap'
import { invalid } from '../src/scenario.js'
import { throughput } from '../src/throughput.js'
import { check } from '../src/run.js'

// Fast failures are not throughput: a 503 answered in microseconds would otherwise beat any real route.
t.test('a load that saw non-2xx answers or errors makes its figure invalid; a clean one does not', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/ok', async () => ({ ok: true }))
  app.get('/busy', async (_request, reply) => reply.code(503).send({ busy: true }))
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const ctx = { rounds: 1, smoke: true, log: () => {} }

  const bad = await throughput(ctx, { id: 'T', what: 'w', ours: `${url}/busy`, baseline: `${url}/ok`, baselineName: 'b', target: 0 })
  t.ok(bad.loads!.non2xx > 0, 'the 503s were counted')
  t.ok(invalid(bad), 'so the figure is invalid')
  t.equal(bad.met, false, 'an invalid figure never meets its target, even a target of 0×')

  // Nothing listens on port 1: every request is a connection error.
  const refused = await throughput(ctx, { id: 'T', what: 'w', ours: 'http://127.0.0.1:1/', baseline: `${url}/ok`, baselineName: 'b', target: 0 })
  t.ok(refused.loads!.errors > 0, 'the connection errors were counted')
  t.ok(invalid(refused), 'so that figure is invalid too')

  // Two rounds: the second puts the baseline first (ABBA), so neither side always runs first.
  const good = await throughput({ ...ctx, rounds: 2 }, { id: 'T', what: 'w', ours: `${url}/ok`, baseline: `${url}/ok`, baselineName: 'b', target: 0 })
  t.same({ non2xx: good.loads!.non2xx, errors: good.loads!.errors }, { non2xx: 0, errors: 0 }, 'a clean load counts no failure')
  t.ok(good.loads!.requests > 0, 'and counts the requests it sent')
  t.notOk(invalid(good), 'its figure is valid')
  t.equal(good.met, true, 'and meets a target it reaches')

  t.equal(check({ figures: [good] } as never).code, 0, '--check passes a report whose targets are met')
  const failed = check({ figures: [good, bad] } as never)
  t.equal(failed.code, 1, '--check fails a report with an invalid figure')
  t.match(failed.message, /1 target\(s\) read "no": T w/)
})
