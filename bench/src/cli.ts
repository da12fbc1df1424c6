import { readFileSync, writeFileSync } from 'node:fs'
import { runBench, table } from './run.js'

// `pnpm bench [P2 …]`: all scenarios, or the ones named. BENCH_ROUNDS (3) and BENCH_SMOKE (off) tune it;
// BENCH_RESULTS moves latest.json (the smoke test points it at a temporary folder).
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const smoke = process.env.BENCH_SMOKE === '1'
/* c8 ignore next -- the real results folder is for `pnpm bench`; tests write to a temporary one */
const resultsDir = process.env.BENCH_RESULTS ?? new URL('../results', import.meta.url).pathname
// `--readme FILE` also puts the table between the bench markers of FILE, so the README's
// figures always come from a real run and are never typed by hand.
const args = process.argv.slice(2)
const readmeAt = args.indexOf('--readme')
const readme = readmeAt === -1 ? undefined : args.splice(readmeAt, 2)[1]
runBench({ ids: args, rounds, smoke, resultsDir, log: (line) => console.error(line) })
  .then((report) => {
    const text = table(report)
    process.stdout.write(text)
    if (readme) {
      const current = readFileSync(readme, 'utf8')
      const updated = current.replace(/(<!-- bench:start -->\n)[\s\S]*?(<!-- bench:end -->)/, `$1${text}$2`)
      if (updated === current && !current.includes(text)) throw new Error(`${readme} has no <!-- bench:start --> … <!-- bench:end --> section`)
      writeFileSync(readme, updated)
    }
  })
  .catch((err: Error) => {
    console.error(err.message)
    process.exitCode = 1
  })
