import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import t from 'tap'
import { ephemeralRange, freePorts, outsidePool } from '../src/free-ports.js'

t.test('ephemeralRange() reads the kernel range and refuses what makes no sense', async (t) => {
  t.same(ephemeralRange('32768\t60999\n'), [32768, 60999])
  t.equal(ephemeralRange(undefined), undefined, 'no /proc')
  t.equal(ephemeralRange('garbage'), undefined)
  t.equal(ephemeralRange('60999 32768'), undefined, 'low above high')
  t.equal(ephemeralRange('0 100'), undefined)
  t.equal(ephemeralRange('1024 70000'), undefined)
})

t.test('outsidePool() keeps clear of the ephemeral range, on both sides when there is room', async (t) => {
  t.same(outsidePool([32768, 60999]), [[10000, 32767], [61000, 65535]])
  t.same(outsidePool([10500, 65000]), [], 'too little room on either side: ask the kernel')
  t.same(outsidePool([1024, 60999]), [[61000, 65535]])
  t.same(outsidePool(undefined), [])
})

t.test('freePorts() gives distinct ports outside the ephemeral range, free to listen on', async (t) => {
  const ports = await freePorts(20)
  t.equal(new Set(ports).size, 20, 'distinct')
  // This machine's range (CI is Linux): not one port may be one an outgoing connection could take.
  const range = ephemeralRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'))!
  t.ok(ports.every((p) => p < range[0] || p > range[1]), `outside ${range.join('-')}: ${ports.join(', ')}`)
  const servers = await Promise.all(ports.map(async (port) => await new Promise<Server>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(port, '127.0.0.1', () => resolve(s))
  })))
  t.equal(servers.length, 20, 'every port could be listened on')
  await Promise.all(servers.map(async (s) => await new Promise((resolve) => s.close(resolve))))
})

t.test('freePorts() skips a taken port, never repeats one, and asks the kernel when the pool is spent', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  const busy = (taken.address() as import('node:net').AddressInfo).port
  t.teardown(() => { taken.close() })
  const [only] = await freePorts(1, [[busy, busy]])
  t.not(only, busy, 'the taken port was not handed out')
  t.ok(only! > 0)
  const [free] = await freePorts(1)
  const two = await freePorts(2, [[free!, free!]])
  t.equal(two[0], free, 'the one free port of the pool first')
  t.not(two[1], free, 'then the kernel, never the same port twice')
  t.same(await freePorts(0), [])
})
