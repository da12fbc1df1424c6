import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { ensureConsul } from '@reg/testkit'
import { failsCheck, invalid, reading, type Figure, type Scenario, type ScenarioContext } from './scenario.js'
import { scenarios } from './scenarios/index.js'

export interface BenchOptions {
  /** Scenario ids to run; empty for all. */
  ids: string[]
  rounds: number
  smoke: boolean
  log: (line: string) => void
  /** Where latest.json goes; none when undefined. */
  resultsDir?: string
}

export interface BenchReport {
  date: string
  /** The code that was measured: HEAD, and whether tracked files differed from it. */
  commit: { sha: string, dirty: boolean }
  machine: { cores: number, cpu: string, memoryGiB: number, node: string, consul: string }
  rounds: number
  /** os.loadavg() (1, 5, 15 min) when the run started and when it ended; each window keeps its own too. */
  loadavg?: { start: number[], end: number[] }
  /** Wall-clock seconds the whole run took. */
  seconds?: number
  figures: Figure[]
  /**
   * Figures of scenarios measured in separate runs after this one (added to the bench since), each with
   * its own commit, machine and load: the table shows them after this run's, with a provenance line each.
   */
  addenda?: BenchReport[]
}

/** HEAD of the checkout this bench runs from; 'unknown' outside a git checkout (a copied tree). */
function commitOf (dir: string): BenchReport['commit'] {
  try {
    const git = (...args: string[]): string => execFileSync('git', ['-C', dir, ...args], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
    return { sha: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain', '--untracked-files=no') !== '' }
  /* c8 ignore next 3 -- the tests run inside the repository's checkout */
  } catch {
    return { sha: 'unknown', dirty: false }
  }
}

/** The first CPU's model; cpus() is empty on a few platforms (some containers), and the run is still worth printing. */
export function cpuModel (list: Array<{ model: string }>): string {
  return list[0]?.model.trim() ?? 'unknown'
}

/** The scenarios `pnpm bench [ids…]` runs, in the registry's order: all of them when no id is given. */
export function selectScenarios (ids: readonly string[]): Scenario[] {
  const wanted = ids.map((id) => id.toUpperCase())
  const unknown = wanted.filter((id) => !scenarios.some((s) => s.id === id))
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((s) => s.id).join(', ')}`)
  return wanted.length === 0 ? scenarios : scenarios.filter((s) => wanted.includes(s.id))
}

export async function runBench (opts: BenchOptions): Promise<BenchReport> {
  const log = opts.log
  const selected = selectScenarios(opts.ids)
  // Before the first scenario, so a file edited while the bench runs cannot pass for the measured code.
  const commit = commitOf(new URL('.', import.meta.url).pathname)
  const started = performance.now()
  const startLoad = loadavg()
  const ctx: ScenarioContext = { rounds: opts.rounds, smoke: opts.smoke, log }
  const figures: Figure[] = []
  for (const scenario of selected) {
    log(`${scenario.id}: ${scenario.title} (rounds: ${ctx.rounds})`)
    const got = await scenario.run(ctx)
    // Figures that keep only their samples get them as windows too, with the load average at the
    // scenario's end (the scenarios with loads record it per window themselves).
    const end = loadavg()
    for (const f of got) {
      f.windows ??= [
        ...f.ours.samples.map((value, round) => ({ side: 'ours', round, value, loadavg: end })),
        ...f.baseline.samples.map((value, round) => ({ side: 'baseline', round, value, loadavg: end }))
      ]
    }
    figures.push(...got)
  }
  const consul = execFileSync(await ensureConsul(), ['version']).toString().split('\n')[0]!.trim()
  const report: BenchReport = {
    date: new Date().toISOString(),
    commit,
    machine: { cores: cpus().length, cpu: cpuModel(cpus()), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, consul },
    rounds: ctx.rounds,
    loadavg: { start: startLoad, end: loadavg() },
    seconds: Math.round((performance.now() - started) / 1000),
    figures
  }
  if (opts.resultsDir) {
    mkdirSync(opts.resultsDir, { recursive: true })
    writeFileSync(`${opts.resultsDir}/latest.json`, JSON.stringify(report, null, 2) + '\n')
  }
  return report
}

function fmt (n: number): string {
  if (Number.isInteger(n)) return String(n)
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3)
}

function share (failed: number[], sent: number[]): string {
  const total = sent.reduce((x, y) => x + y, 0)
  return `${fmt(100 * failed.reduce((x, y) => x + y, 0) / total)}%`
}

/** "median unit (min–max)", and for failure counts also the requests per run and the share that failed. */
function cell (f: Figure, side: 'ours' | 'baseline'): string {
  const s = f[side]
  const text = `${fmt(s.median)} ${f.unit} (${fmt(s.min)}–${fmt(s.max)})`
  if (!f.requests) return text
  const sent = f.requests[side]
  return `${text} of ${fmt(sent.median)} requests per run · ${share(s.samples, sent.samples)}`
}

function verdict (f: Figure): { ratio: string, met: string } {
  if (invalid(f)) {
    const l = f.loads!
    return { ratio: 'invalid', met: `invalid: ${l.non2xx} non-2xx, ${l.errors} errors in ${l.requests} requests` }
  }
  return { ratio: f.ratio === null ? '–' : `${fmt(f.ratio)}×`, met: reading(f) }
}

/** The A/A null control beside the ratio: "median (min–max)", or – for a figure without one. */
function nullControl (f: Figure): string {
  return f.aa ? `${fmt(f.aa.median)}× (${fmt(f.aa.min)}–${fmt(f.aa.max)})` : '–'
}

const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ')

/** The load average at the start and the end, and the run's length; reports from before #22 have neither. */
function footer (report: BenchReport): string {
  if (!report.loadavg || report.seconds === undefined) return ''
  return ` · load average ${la(report.loadavg.start)} at the start, ${la(report.loadavg.end)} at the end · ${Math.round(report.seconds / 60)} min`
}

/** Where a run's figures come from: date, commit, machine, rounds, load. */
function provenance (report: BenchReport): string {
  const m = report.machine
  const c = report.commit
  return `${report.date.slice(0, 10)} · commit ${c.sha.slice(0, 12)}${c.dirty ? ' (with uncommitted changes)' : ''} · ${m.cores} cores (${m.cpu}) · ${m.memoryGiB} GiB · Node ${m.node} · ${m.consul} · ${report.rounds} rounds${footer(report)}`
}

/** Every figure of a report, its addenda's after its own. */
export function allFigures (report: BenchReport): Figure[] {
  return [...report.figures, ...(report.addenda ?? []).flatMap((a) => a.figures)]
}

export function table (report: BenchReport): string {
  const rows = [['id', 'what', 'ours median (min–max)', 'baseline median (min–max)', 'baseline', 'ratio', 'A/A null control', 'target', 'met']]
  for (const f of allFigures(report)) {
    const v = verdict(f)
    rows.push([f.id, f.what, cell(f, 'ours'), cell(f, 'baseline'), f.baselineName, v.ratio, nullControl(f), f.target, v.met])
  }
  const lines = rows.map((r) => `| ${r.join(' | ')} |`)
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`)
  const separate = (report.addenda ?? []).map((a) => `\n\n${[...new Set(a.figures.map((f) => f.id))].join(', ')}, a separate run: ${provenance(a)}`)
  return `${lines.join('\n')}\n\n${provenance(report)}${separate.join('')}\n`
}

/** `pnpm bench --check`: the exit code (1 when any target reads "no" or a figure is invalid) and what to say. */
export function check (report: BenchReport): { code: 0 | 1, message: string } {
  const failing = report.figures.filter(failsCheck)
  if (failing.length === 0) return { code: 0, message: '--check: no target reads "no"' }
  return { code: 1, message: `--check: ${failing.length} target(s) read "no": ${failing.map((f) => `${f.id} ${f.what}`).join('; ')}` }
}
