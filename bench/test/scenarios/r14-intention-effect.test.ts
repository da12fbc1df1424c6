import t from 'tap'
import { round } from '../fixtures/smoke.js'

// R14's invariants, not its timings: both sides ran, a deny refused the caller on both (ours with the
// coded 403), a bystander with no intention was still served (the refusal came from the intention), and
// the three figures carry finite medians.
t.test('R14 runs one smoke round: the denied caller is refused on both sides, the bystander is served', async (t) => {
  const lines: string[] = []
  const report = await round('R14', lines)
  t.same(report.figures.map((f) => f.id), ['R14', 'R14', 'R14'])
  for (const f of report.figures) t.ok(Number.isFinite(f.ours.median) && Number.isFinite(f.baseline.median) && Number.isFinite(f.ratio), `${f.what}: finite`)
  const deny = (side: string): string => lines.find((l) => l.startsWith(`R14 round 1 ${side} deny, new connections:`)) ?? ''
  t.match(deny('ours'), /: [\d.]+ ms, last answer 403 FST_REG_CONNECT_FORBIDDEN \(new connection\) .*; bystander: 200 \(new connection\)$/, 'ours: the denied caller gets the coded 403, the bystander is served')
  t.match(deny('peer'), /: [\d.]+ ms, last answer error [A-Z0-9_]+ \(new connection\) .*; bystander: 200 \(new connection\)$/, 'the built-in proxy: the denied caller\'s handshake is refused, the bystander is served')
  const open = lines.find((l) => l.startsWith('R14 round 1 ours deny, open keep-alive connection:')) ?? ''
  t.match(open, /: [\d.]+ ms, last answer 403 FST_REG_CONNECT_FORBIDDEN \(kept-alive connection\) .*; bystander: 200 /, 'ours refuses on the connection that was already open')
  for (const side of ['ours', 'peer']) t.ok(lines.some((l) => l.startsWith(`R14 round 1 ${side} delete, new connections: `) && / ms, last answer 200 /.test(l)), `${side}: the deletion serves the caller again`)
  t.ok(lines.some((l) => l.startsWith('R14 round 1 peer deny, open keep-alive connection:')), 'the peer ran the keep-alive trial too')
})
