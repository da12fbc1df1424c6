import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { ensureConsul } from '@reg/testkit'
import type { Figure, Scenario, ScenarioContext } from './scenario.js'
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
  machine: { cores: number, cpu: string, memoryGiB: number, node: string, consul: string }
  rounds: number
  figures: Figure[]
}

export async function runBench (opts: BenchOptions): Promise<BenchReport> {
  const log = opts.log
  const wanted = opts.ids.map((id) => id.toUpperCase())
  const selected: Scenario[] = wanted.length === 0 ? scenarios : scenarios.filter((s) => wanted.includes(s.id))
  const unknown = wanted.filter((id) => !scenarios.some((s) => s.id === id))
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((s) => s.id).join(', ')}`)
  const ctx: ScenarioContext = { rounds: opts.rounds, smoke: opts.smoke, log }
  const figures: Figure[] = []
  for (const scenario of selected) {
    log(`${scenario.id}: ${scenario.title} (rounds: ${ctx.rounds})`)
    figures.push(...await scenario.run(ctx))
  }
  const consul = execFileSync(await ensureConsul(), ['version']).toString().split('\n')[0]!.trim()
  const report: BenchReport = {
    date: new Date().toISOString(),
    // cpus() is empty on a few platforms (some containers); the figure is still worth printing.
    /* c8 ignore next */
    machine: { cores: cpus().length, cpu: cpus()[0]?.model.trim() ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, consul },
    rounds: ctx.rounds,
    figures
  }
  if (opts.resultsDir) {
    mkdirSync(opts.resultsDir, { recursive: true })
    writeFileSync(`${opts.resultsDir}/latest.json`, JSON.stringify(report, null, 2) + '\n')
  }
  return report
}

function fmt (n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3)
}

export function table (report: BenchReport): string {
  const rows = [['id', 'what', 'ours median (min–max)', 'baseline median (min–max)', 'baseline', 'ratio', 'target', 'met']]
  for (const f of report.figures) {
    rows.push([
      f.id, f.what,
      `${fmt(f.ours.median)} ${f.unit} (${fmt(f.ours.min)}–${fmt(f.ours.max)})`,
      `${fmt(f.baseline.median)} ${f.unit} (${fmt(f.baseline.min)}–${fmt(f.baseline.max)})`,
      f.baselineName,
      `${fmt(f.ratio)}×`,
      f.target,
      f.met === undefined ? '–' : f.met ? 'yes' : 'no'
    ])
  }
  const lines = rows.map((r) => `| ${r.join(' | ')} |`)
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`)
  const m = report.machine
  return `${lines.join('\n')}\n\n${report.date.slice(0, 10)} · ${m.cores} cores (${m.cpu}) · ${m.memoryGiB} GiB · Node ${m.node} · ${m.consul} · ${report.rounds} rounds\n`
}
