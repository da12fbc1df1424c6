// The live view: one HTML page with its script and style served next to it (./live-view.js and
// ./live-view.css: no build step, no external asset, and no inline code, so the page runs under a
// `default-src 'self'` CSP). The script reads the `snapshot` events of ./events and redraws, writing
// // every value with textContent, never innerHTML: Consul's values are user input. A value longer than
// CELL_CHARS is cut in its cell (a 20,000-character address once made the page 250,000 px wide), and the
// whole value is the cell's tooltip (title). Each instance row carries data-instance-id (the Consul
// service id) and data-state (passing, warning, critical or ejected), which the browser test reads.
// The split line draws the watch's priority levels (datacenters with failover, zones with locality),
// each a badge with data-datacenter and data-state, marked when its datacenter's watch is not live.

/** The longest value a cell shows whole; longer ones are cut to this, ending with …. */
export const CELL_CHARS = 60

export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gateway · live view</title>
<link rel="stylesheet" href="live-view.css">
</head>
<body>
<h1>Upstream <span id="service">…</span> <span id="conn">connecting…</span></h1>
<p class="watch">Watch: <span id="watch-state" class="badge">…</span> <span id="watch-for"></span>
  <span id="panic" class="badge panic" hidden>panic: routing to every instance</span></p>
<p class="split" id="split-line" hidden>Traffic: <span id="split"></span></p>
<table>
  <thead><tr><th>Consul service id</th><th>address</th><th>datacenter</th><th>zone</th><th>Consul status</th><th>weight</th><th>ejected</th><th>outstanding</th><th>share of the last 10 s</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<p class="totals">Requests <b id="requests">0</b> · retries <b id="retries">0</b> · ejections <b id="ejections">0</b> · hedges <b id="hedges">0</b> (won <b id="hedgesWon">0</b>) · deadlines passed <b id="deadlinesExceeded">0</b></p>
<script src="live-view.js"></script>
</body>
</html>
`

export const DASHBOARD_STYLE = `body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; }
[hidden] { display: none !important; }
h1 { font-size: 1.2rem; margin: 0 0 .5rem; }
.watch, .split { margin: 0 0 1rem; }
.badge { display: inline-block; padding: 0 .5em; border-radius: .3em; font-weight: 600; }
.live { background: #d8f5dd; } .stale, .expired, .starting { background: #ffe9b3; } .closed { background: #eee; }
.panic { background: #ffd1d1; }
table { border-collapse: collapse; min-width: 48rem; }
td { max-width: 30rem; overflow-wrap: anywhere; }
th, td { text-align: left; padding: .3rem .7rem; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }
tr[data-state="passing"] td:first-child { border-left: 4px solid #2e9d48; }
tr[data-state="warning"] td:first-child { border-left: 4px solid #d39a00; }
tr[data-state="critical"] td:first-child { border-left: 4px solid #c62828; }
tr[data-state="ejected"] td:first-child { border-left: 4px solid #6a1b9a; }
tr[data-state="ejected"], tr[data-state="critical"] { color: #888; }
.bar { display: inline-block; height: .7em; background: #4a7bd0; vertical-align: middle; margin-right: .4em; }
.totals { margin-top: 1rem; }
#conn { color: #888; font-size: .9em; }
`

export const DASHBOARD_SCRIPT = `const $ = (id) => document.getElementById(id)
const CELL_CHARS = ${CELL_CHARS}
function cut (text) {
  return text.length > CELL_CHARS ? text.slice(0, CELL_CHARS - 1) + '…' : text
}
function cell (text) {
  const td = document.createElement('td')
  td.textContent = cut(text)
  if (text.length > CELL_CHARS) td.title = text
  return td
}
function levelName (level, levels) {
  const dc = level.datacenter === null ? 'local' : level.datacenter
  if (level.zone !== null) return dc + ' ' + level.zone
  // With locality the local datacenter has two levels: the gateway's zone, then every other zone.
  return levels.some((l) => l.datacenter === level.datacenter && l.zone !== null) ? dc + ' other zones' : dc
}
function split (levels) {
  const parts = []
  for (const level of levels) {
    if (parts.length > 0) parts.push(' · ')
    const name = levelName(level, levels)
    const badge = document.createElement('span')
    badge.className = 'badge ' + level.state
    badge.dataset.datacenter = level.datacenter === null ? '' : level.datacenter
    badge.dataset.state = level.state
    badge.textContent = cut(name) + ' ' + Math.round(level.load * 100) + ' %' + (level.state === 'live' ? '' : ' (' + level.state + ')')
    badge.title = name + ': ' + level.routable + ' of ' + level.candidates + ' instance(s) routable'
    parts.push(badge)
  }
  return parts
}
function since (ms) {
  const s = Math.max(0, Math.round(ms / 1000))
  return s < 120 ? s + ' s' : Math.round(s / 60) + ' min'
}
function render (snap) {
  $('service').textContent = snap.service
  const w = snap.watch
  $('watch-state').textContent = w.state
  $('watch-state').className = 'badge ' + w.state
  $('watch-for').textContent = w.lastContact === null ? ''
    : w.state === 'live' ? '(Consul answered ' + since(snap.at - w.lastContact) + ' ago)'
    : '(for ' + since(w.staleSeconds * 1000) + ', serving the last known instances)'
  $('panic').hidden = !w.panic
  $('split').replaceChildren(...split(snap.priorities))
  $('split-line').hidden = snap.priorities.length === 0
  const rows = snap.instances.map((i) => {
    const tr = document.createElement('tr')
    tr.dataset.instanceId = i.id
    tr.dataset.state = i.state
    const share = document.createElement('td')
    const bar = document.createElement('span')
    bar.className = 'bar'
    bar.style.width = Math.round(i.share * 120) + 'px'
    share.append(bar, Math.round(i.share * 100) + ' %')
    tr.append(cell(i.id), cell(i.address + ':' + i.port), cell(i.datacenter), cell(i.zone === null ? '' : i.zone), cell(i.maintenance ? i.status + ' (maintenance)' : i.status),
      cell(String(i.weight)), cell(i.ejected ? 'ejected' : 'no'), cell(String(i.outstanding)), share)
    return tr
  })
  $('rows').replaceChildren(...rows)
  $('requests').textContent = snap.totals.requests
  $('retries').textContent = snap.totals.retries
  $('ejections').textContent = snap.totals.ejections
  $('hedges').textContent = snap.totals.hedges
  $('hedgesWon').textContent = snap.totals.hedgesWon
  $('deadlinesExceeded').textContent = snap.totals.deadlinesExceeded
}
const events = new EventSource('events')
events.addEventListener('snapshot', (e) => { $('conn').textContent = ''; render(JSON.parse(e.data)) })
events.onerror = () => { $('conn').textContent = 'reconnecting…' }
`
