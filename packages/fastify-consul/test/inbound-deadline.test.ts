import t from 'tap'
import { request } from 'undici'
import { BalancedDispatcher } from '../src/discovery/dispatch/dispatcher.js'
import { DEADLINE_HEADER } from '../src/discovery/dispatch/deadline.js'
import { dispatchSettings } from '../src/discovery/options.js'
import type { ConsulPluginOptions } from '../src/index.js'
import { buildApp } from './fixtures/app.js'
import { deadPort, upstream } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { StaticWatch, instanceAt } from './fixtures/discovery-static-watch.js'

// #23, the server side: the caller's budget header becomes request.deadline, and what the handler sends
// through a dispatcher inherits it. No Consul is involved (register: false, no discovery).

interface Teardown { teardown (fn: () => unknown): void }

async function appWith (t: Teardown, extra: Partial<ConsulPluginOptions> = {}): Promise<Awaited<ReturnType<typeof buildApp>>['app']> {
  const echo = await upstream(t, 'echo', (req, res) => res.end(JSON.stringify({ budget: req.headers[DEADLINE_HEADER] ?? null })))
  const d = new BalancedDispatcher({ ...dispatchSettings({}), watch: new StaticWatch([instanceAt('echo', echo.port)]), log: recordingLogger().log, random: Math.random })
  t.teardown(() => d.close())
  const { app } = await buildApp(t, { service: { name: 'front' }, register: false, consul: { address: `127.0.0.1:${await deadPort(t)}` }, ...extra }, (app) => {
    app.get('/deadline', async (req) => ({ remaining: req.deadline === undefined ? null : Math.round(req.deadline.remaining()) }))
    app.get('/downstream', async () => {
      // After an await, as a real handler would be: the inherited deadline survives it.
      await new Promise((resolve) => setTimeout(resolve, 5))
      const res = await request('http://echo/', { dispatcher: d })
      return await res.body.json()
    })
  })
  await app.ready()
  return app
}

const remaining = async (app: Awaited<ReturnType<typeof appWith>>, value?: string | string[]): Promise<number | null> => {
  const res = await app.inject({ url: '/deadline', headers: value === undefined ? {} : { [DEADLINE_HEADER]: value } })
  return (res.json() as { remaining: number | null }).remaining
}

t.test('the header becomes request.deadline; hostile values are ignored or clamped', async (t) => {
  const app = await appWith(t, { inboundDeadline: { max: '10s' } })
  const r = await remaining(app, '800')
  t.ok(r !== null && r <= 800 && r > 0, `a plain budget is read (${r} ms left)`)
  t.equal(await remaining(app), null, 'no header, no deadline')
  for (const bad of ['-1', 'abc', '1e9', '3.5', '0', '300, 400', '12345678901']) t.equal(await remaining(app, bad), null, `ignored: ${bad}`)
  t.equal(await remaining(app, ['300', '400']), null, 'ignored: repeated')
  const huge = await remaining(app, '999999999')
  t.ok(huge !== null && huge <= 10_000 && huge > 9000, `huge: clamped to inboundDeadline.max (${huge} ms)`)
})

t.test('a dispatch made while handling the request inherits its deadline, after awaits', async (t) => {
  const app = await appWith(t)
  const inherited = (await app.inject({ url: '/downstream', headers: { [DEADLINE_HEADER]: '700' } })).json() as { budget: string }
  t.ok(Number(inherited.budget) < 700 && Number(inherited.budget) > 0, `the downstream call was told what was left (${inherited.budget})`)
  const none = (await app.inject({ url: '/downstream' })).json() as { budget: string | null }
  t.equal(none.budget, null, 'negative control: without the header nothing is sent downstream')
})

t.test('inboundDeadline: false ignores the header', async (t) => {
  const app = await appWith(t, { inboundDeadline: false })
  t.equal(await remaining(app, '800'), null)
  const res = (await app.inject({ url: '/downstream', headers: { [DEADLINE_HEADER]: '700' } })).json() as { budget: string | null }
  t.equal(res.budget, null, 'and nothing is inherited')
})
