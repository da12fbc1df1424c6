import t from 'tap'
import { table } from '../../src/run.js'
import { smoke, whats } from '../fixtures/smoke.js'

t.test('P3 runs one smoke round: the proxy over 1 and over 3 upstreams, against undici\'s own pool', async (t) => {
  const report = await smoke(t, 'P3')
  t.same(whats(report), ['reply-from proxy, discovery of 1 upstream', 'reply-from proxy, discovery over 3 upstreams'])
  t.match(report.figures.find((f) => f.what.includes('over 3 upstreams'))!.baselineName, /BalancedPool over the same 3 upstreams/)
  t.match(table(report), /\| id \| what \|.*\| A\/A null control \|/, 'the table has the A/A column')
})
