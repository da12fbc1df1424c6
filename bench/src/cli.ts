import { readFileSync, writeFileSync } from 'node:fs'
import { benchSection, withAddendum, withTable } from './readme.js'
import { check, runBench, table, type BenchReport } from './run.js'

// `pnpm bench [--check] [P2 …]`: all scenarios, or the ones named. BENCH_ROUNDS (3) and BENCH_SMOKE (off) tune it;
// BENCH_RESULTS moves latest.json and readme.json (the smoke test points it at a temporary folder).
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const smoke = process.env.BENCH_SMOKE === '1'
/* c8 ignore next -- the real results folder is for `pnpm bench`; tests write to a temporary one */
const resultsDir = process.env.BENCH_RESULTS ?? new URL('../results', import.meta.url).pathname
// `--readme FILE` also puts the table between the bench markers of FILE and writes the report it came
// from to readme.json, the one results file that is committed: the README's figures always come from a
// real run, are never typed by hand, and can be checked against their source (test/readme.test.ts).
const args = process.argv.slice(2)
const readmeAt = args.indexOf('--readme')
const readme = readmeAt === -1 ? undefined : args.splice(readmeAt, 2)[1]
// `--addendum` (with `--readme`): this run's scenarios replace theirs in the published readme.json, as an
// addendum under its own provenance line, and every other row stays as published (withAddendum()).
const addendumAt = args.indexOf('--addendum')
const addendum = addendumAt !== -1
if (addendum) args.splice(addendumAt, 1)
// `--check`: exit 1 when any target reads "no" (or a figure is invalid), after printing the table.
const checkAt = args.indexOf('--check')
const wantCheck = checkAt !== -1
if (wantCheck) args.splice(checkAt, 1)
async function main (): Promise<void> {
  // Checked before the run, so a README without markers does not cost a whole bench.
  if (readme) benchSection(readFileSync(readme, 'utf8'), readme)
  if (addendum && !readme) throw new Error('--addendum goes with --readme FILE')
  const before = addendum ? JSON.parse(readFileSync(`${resultsDir}/readme.json`, 'utf8')) as BenchReport : undefined
  const report = await runBench({ ids: args, rounds, smoke, resultsDir, log: (line) => console.error(line) })
  process.stdout.write(table(report))
  if (readme) {
    const published = before ? withAddendum(before, report) : report
    writeFileSync(readme, withTable(readFileSync(readme, 'utf8'), readme, published))
    writeFileSync(`${resultsDir}/readme.json`, JSON.stringify(published, null, 2) + '\n')
  }
  if (wantCheck) {
    const { code, message } = check(report)
    console.error(message)
    process.exitCode = code
  }
}

main().catch((err: Error) => {
  console.error(err.message)
  process.exitCode = 1
})
