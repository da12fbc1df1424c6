import { runBench, table } from './run.js'

// `pnpm bench [P2 …]`: all scenarios, or the ones named. BENCH_ROUNDS (3) and BENCH_SMOKE (off) tune it;
// BENCH_RESULTS moves latest.json (the smoke test points it at a temporary folder).
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const smoke = process.env.BENCH_SMOKE === '1'
/* c8 ignore next -- the real results folder is for `pnpm bench`; tests write to a temporary one */
const resultsDir = process.env.BENCH_RESULTS ?? new URL('../results', import.meta.url).pathname
runBench({ ids: process.argv.slice(2), rounds, smoke, resultsDir, log: (line) => console.error(line) })
  .then((report) => { process.stdout.write(table(report)) })
  .catch((err: Error) => {
    console.error(err.message)
    process.exitCode = 1
  })
