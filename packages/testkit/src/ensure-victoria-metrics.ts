import { join } from 'node:path'
import { fetchDebianPackage } from './debian-package.js'
import { projectRoot } from './ensure-consul.js'
import { isExecutable, onPath } from './private-apt.js'

// A Prometheus-compatible scraper for tests: Debian's `prometheus` is built without consul_sd_configs,
// Debian's `victoria-metrics` (bookworm: 1.79) has it, in one static binary with the same scrape config
// and query API. Fetched like consul: apt pointed at private folders, unpacked with dpkg-deb.

export interface EnsureVictoriaMetricsOptions {
  /** Environment to read VICTORIA_METRICS_BIN, PATH and REG_VICTORIA_METRICS_CACHE from. Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Where the fetched binary is cached. Default: REG_VICTORIA_METRICS_CACHE or <project>/.cache/victoria-metrics. */
  cacheDir?: string
  /** Folder holding the system's apt sources, read to reuse its Debian mirror. Default: /etc/apt. */
  aptDir?: string
  /** Debian release to fetch from. Default: bookworm. */
  suite?: string
  /** Called with progress lines while fetching. */
  log?: (line: string) => void
}

export class VictoriaMetricsNotFoundError extends Error {
  code = 'REG_TESTKIT_NO_VICTORIA_METRICS'
}

const HELP = [
  'Provide a victoria-metrics binary (single-node, with consul_sd_configs) in one of these ways:',
  '  - set VICTORIA_METRICS_BIN=/path/to/victoria-metrics',
  '  - install it on PATH: `apt-get install victoria-metrics` (Debian/Ubuntu) or https://docs.victoriametrics.com/',
  '  - on a Debian system with apt-get and dpkg-deb, run `node packages/testkit/dist/cli.js ensure`'
].join('\n')

/**
 * The path of a victoria-metrics binary: VICTORIA_METRICS_BIN → `victoria-metrics` on PATH → the
 * project cache → fetched into the cache from Debian. The system's apt configuration is only read.
 */
export async function ensureVictoriaMetrics (opts: EnsureVictoriaMetricsOptions = {}): Promise<string> {
  const env = opts.env ?? process.env
  if (env.VICTORIA_METRICS_BIN) {
    if (isExecutable(env.VICTORIA_METRICS_BIN)) return env.VICTORIA_METRICS_BIN
    throw new VictoriaMetricsNotFoundError(`VICTORIA_METRICS_BIN=${env.VICTORIA_METRICS_BIN} is not an executable file.\n${HELP}`)
  }
  const fromPath = onPath('victoria-metrics', env)
  if (fromPath) return fromPath
  const cacheDir = opts.cacheDir ?? env.REG_VICTORIA_METRICS_CACHE ?? join(projectRoot, '.cache', 'victoria-metrics')
  const cached = join(cacheDir, 'root', 'usr', 'bin', 'victoria-metrics')
  if (isExecutable(cached)) return cached
  try {
    await fetchDebianPackage({ name: 'victoria-metrics', suite: opts.suite ?? 'bookworm', cacheDir, aptDir: opts.aptDir ?? '/etc/apt', env, log: opts.log ?? (() => {}) })
  } catch (err) {
    throw new VictoriaMetricsNotFoundError(`No victoria-metrics found (VICTORIA_METRICS_BIN unset, none on PATH, nothing in ${cacheDir}), and ${(err as Error).message}.\n${HELP}`)
  }
  opts.log?.(`victoria-metrics ready at ${cached}`)
  return cached
}
