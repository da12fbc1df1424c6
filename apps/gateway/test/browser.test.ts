/// <reference lib="dom" />
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { CHROMIUM_ARGS, ensureChromium, startConsul, startConsulFederation } from '@reg/testkit'
import { chromium } from 'playwright-core'
import t from 'tap'
import { CELL_CHARS } from '../src/dashboard-page.js'
import { buildGateway, instancesBecome } from './fixtures/app.js'
import { registerInstance, removeCheck } from './fixtures/consul.js'
import { loadUntil, startFleet } from './fixtures/fleet.js'

// The gateway's live view in a real browser (Debian's chromium, driven by playwright-core, which downloads
// no browser): three passing rows, then a replica killed with SIGKILL under load leaves `passing` within
// seconds. The screenshot is a test artifact (git-ignored): apps/gateway/test-artifacts/dashboard.png.

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url))
const executablePath = await ensureChromium({ log: (line) => t.comment(line) })

t.test('/_gateway/ in Chromium: 3 passing rows; a kill -9 under load turns its row within seconds', async (t) => {
  const fleet = await startFleet(t, 'browser', { GATEWAY_DASHBOARD: 'true' })
  const browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1100, height: 420 } })
  await page.goto(`${fleet.adminBase}/_gateway/`)

  const rows = page.locator('tr[data-instance-id]')
  await rows.nth(2).waitFor({ timeout: 10_000 })
  const states = async (): Promise<Record<string, string | null>> => Object.fromEntries(await rows.evaluateAll((trs) =>
    trs.map((tr) => [tr.getAttribute('data-instance-id'), tr.getAttribute('data-state')])))
  t.same(await states(), Object.fromEntries(fleet.ids.map((id) => [id, 'passing'])), 'one passing row per replica, by Consul service id')
  t.equal(await page.locator('#watch-state').textContent(), 'live')
  t.equal(await page.locator('#panic').isHidden(), true, 'no panic')
  t.equal(await page.locator('#split').textContent(), 'dc1 100 %', 'the split: one datacenter, named after its instances, with all the traffic')
  t.same(await rows.evaluateAll((trs) => trs.map((tr) => tr.children[2]?.textContent)), ['dc1', 'dc1', 'dc1'], 'each row says its datacenter')

  const victim = fleet.ids[1]!
  // Consul keeps listing it (its check is removed): what moves the row is the gateway's own view.
  await removeCheck(fleet.agent.url, victim)
  let stopLoad!: () => void
  const load = loadUntil(fleet.base, new Promise<void>((resolve) => { stopLoad = resolve }))
  t.teardown(() => stopLoad())
  await page.waitForFunction(() => Number(document.getElementById('requests')?.textContent) > 50, undefined, { timeout: 10_000 })
  const killedAt = Date.now()
  fleet.replicas[1]!.child.kill('SIGKILL')
  const row = page.locator(`tr[data-instance-id="${victim}"]`)
  await page.waitForFunction((id) => document.querySelector(`tr[data-instance-id="${id}"]`)?.getAttribute('data-state') !== 'passing', victim, { timeout: 5_000 })
  t.comment(`the row left passing ${Date.now() - killedAt} ms after the kill`)
  t.equal(await row.getAttribute('data-state'), 'ejected', 'the gateway ejected it')
  t.match(await row.locator('td').nth(6).textContent(), 'ejected')
  const others = await states()
  t.same(fleet.ids.filter((id) => id !== victim).map((id) => others[id]), ['passing', 'passing'], 'the survivors stay passing')
  t.ok(Number(await page.locator('#ejections').textContent()) >= 1, 'the ejection total counts it')

  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true })
  stopLoad()
  const statuses = await load
  t.same([...statuses.keys()], [200], 'every request under load succeeded')
  await browser.close()
  // Gracefully, so the process with the live view on also leaves its coverage behind.
  fleet.gateway.child.kill('SIGTERM')
  t.same(await fleet.gateway.exited, { code: 0, signal: null }, 'the gateway with the live view open exits 0 on SIGTERM')
})

t.test('/_gateway/ in Chromium under its CSP: a 20,000-character value is cut in its cell, whole in the tooltip', async (t) => {
  const agent = await startConsul({ t })
  // Since #31, discovery leaves out an address longer than DNS allows (253), so the 20,000 characters
  // that once made the page 250,000 px wide come in the service id here (opaque, kept), and a 253-character
  // address, the longest kept, is cut too.
  const id = `long-${'i'.repeat(20_000)}`
  const address = [...['a', 'b', 'c'].map((c) => c.repeat(63)), 'd'.repeat(61)].join('.')
  t.equal(address.length, 253, 'a 253-character host name')
  await registerInstance(agent.url, { name: 'long', id: 'long-short', port: 1 })
  await registerInstance(agent.url, { name: 'long', id, port: 2, address })
  // In-process (no request is proxied: the view only shows what Consul lists).
  const gateway = await buildGateway(t, { upstream: 'long', consul: { address: agent.address }, register: false, dashboard: true })
  await instancesBecome(gateway, ['long-short', id])
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  const browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1100, height: 420 } })
  const violations: string[] = []
  page.on('console', (message) => { if (/Content Security Policy/i.test(message.text())) violations.push(message.text()) })
  await page.goto(`http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}/_gateway/`)

  const cells = page.locator('tr[data-instance-id^="long-i"] td')
  await cells.first().waitFor({ timeout: 10_000 })
  t.equal(violations.length, 0, 'the script and style load under default-src \'self\': nothing was blocked')
  for (const [column, value] of [[0, id], [1, `${address}:2`]] as const) {
    const text = await cells.nth(column).textContent() ?? ''
    t.ok(text.length <= CELL_CHARS, `column ${column}: the cell shows ${text.length} of ${value.length} characters`)
    t.ok(text.endsWith('…') && value.startsWith(text.slice(0, -1)), 'the start of the value, and it says it was cut')
    t.equal(await cells.nth(column).getAttribute('title'), value, 'the whole value is the tooltip')
  }
  t.equal(await page.locator('tr[data-instance-id="long-short"] td').nth(1).getAttribute('title'), null, 'a short value is whole, with no tooltip')
  const width = await page.evaluate(() => document.documentElement.scrollWidth)
  t.ok(width < 2_000, `the page is ${width} px wide, not 250,000`)
  t.equal(await page.evaluate(() => document.querySelectorAll('svg, img, iframe, script:not([src])').length), 0, 'no markup was made from a value')
  await browser.close()
})

t.test('/_gateway/ in Chromium with failover and a zone: the split line, each row\'s datacenter and zone, a lost datacenter marked stale', async (t) => {
  const { agents } = await startConsulFederation({ t })
  const dc1 = agents.dc1!
  const dc2 = agents.dc2!
  // A zone is free text in Consul's meta: this one is markup that would run if the page ever parsed it.
  const hostile = '<img src=x onerror="document.title=\'pwned\'">'
  const register = async (agentUrl: string, id: string, zone?: string): Promise<void> => {
    const res = await fetch(`${agentUrl}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'split', ID: id, Address: '127.0.0.1', Port: 1, Meta: zone === undefined ? {} : { zone } })
    })
    if (!res.ok) throw new Error(`registering ${id}: ${res.status} ${await res.text()}`)
  }
  await register(dc1.url, 'split-a', 'a')
  await register(dc1.url, 'split-hostile', hostile)
  await register(dc2.url, 'split-dc2')
  // In-process (no request is proxied: the view only shows what Consul lists and how traffic would split).
  const gateway = await buildGateway(t, { upstream: 'split', consul: { address: dc1.address }, register: false, dashboard: true, failover: ['dc2'], zone: 'a' })
  await instancesBecome(gateway, ['split-a'])
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  const browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1100, height: 420 } })
  await page.goto(`http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}/_gateway/`)

  const rows = page.locator('tr[data-instance-id]')
  await rows.nth(2).waitFor({ timeout: 10_000 })
  t.equal(await page.locator('#split').textContent(), 'dc1 a 100 % · dc1 other zones 0 % · dc2 0 %', 'the gateway\'s zone first, then the rest of dc1, then dc2')
  const cells = async (): Promise<Record<string, Array<string | null>>> => Object.fromEntries(await rows.evaluateAll((trs) =>
    trs.map((tr) => [tr.getAttribute('data-instance-id'), [tr.children[2]?.textContent ?? null, tr.children[3]?.textContent ?? null]])))
  t.same(await cells(), { 'split-a': ['dc1', 'a'], 'split-hostile': ['dc1', hostile], 'split-dc2': ['dc2', ''] }, 'datacenter and zone columns; the markup shown as text')
  t.equal(await page.evaluate(() => document.querySelectorAll('img, svg, iframe, script:not([src])').length), 0, 'no markup was made from the zone')
  t.not(await page.title(), 'pwned', 'nothing ran')

  // A lost datacenter: dc1's agent can no longer read dc2, whose last known instances are kept, marked stale.
  await dc2.kill()
  await page.waitForFunction(() => document.querySelector('#split [data-datacenter="dc2"]')?.getAttribute('data-state') === 'stale', undefined, { timeout: 60_000 })
  t.equal(await page.locator('#split').textContent(), 'dc1 a 100 % · dc1 other zones 0 % · dc2 0 % (stale)', 'the stale datacenter is marked')
  t.match(await page.locator('#split [data-datacenter="dc2"]').getAttribute('title'), /^dc2: 1 of 1 instance\(s\) routable$/, 'its tooltip says what it holds')
  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: `${ARTIFACTS}dashboard-failover.png`, fullPage: true })
  await browser.close()
})
