import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { isExecutable, onPath } from './private-apt.js'

const run = promisify(execFile)

// A real browser for the gateway's live-view test: Debian's chromium, driven by playwright-core (which
// downloads no browser). Chromium needs dozens of shared libraries, so unlike consul it cannot be unpacked
// into the cache: it is installed with apt, which CI (root) may do. Elsewhere, the error says how.

export interface EnsureChromiumOptions {
  /** Environment to read CHROMIUM_BIN and PATH from. Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Whether installing with apt-get is allowed. Default: only when running as root (CI). */
  install?: boolean
  /** Called with progress lines while installing. */
  log?: (line: string) => void
}

export class ChromiumNotFoundError extends Error {
  code = 'REG_TESTKIT_NO_CHROMIUM'
}

const HELP = [
  'Provide Chromium in one of these ways:',
  '  - set CHROMIUM_BIN=/path/to/chromium (any Chromium or Chrome build that playwright-core can drive)',
  '  - install it: `sudo apt-get install --no-install-recommends chromium fonts-dejavu-core` (Debian/Ubuntu)',
  '  - run `node packages/testkit/dist/cli.js ensure` as root (what CI does)'
].join('\n')

/** The flags the tests launch it with: headless as root in a container, nothing phoning home. */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'
])

/**
 * The path of a Chromium binary: CHROMIUM_BIN → `chromium` on PATH → installed with
 * `apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core` when allowed.
 */
export async function ensureChromium (opts: EnsureChromiumOptions = {}): Promise<string> {
  const env = opts.env ?? process.env
  if (env.CHROMIUM_BIN) {
    if (isExecutable(env.CHROMIUM_BIN)) return env.CHROMIUM_BIN
    throw new ChromiumNotFoundError(`CHROMIUM_BIN=${env.CHROMIUM_BIN} is not an executable file.\n${HELP}`)
  }
  const found = onPath('chromium', env)
  if (found) return found
  const aptGet = onPath('apt-get', env)
  // getuid() exists on POSIX only; elsewhere there is no apt-get either.
  /* c8 ignore next -- the Windows half of the optional call cannot run here */
  const install = opts.install ?? process.getuid?.() === 0
  if (!aptGet || !install) {
    throw new ChromiumNotFoundError(`No chromium on PATH, and ${aptGet ? 'installing it needs root' : 'this machine has no apt-get to install it'}.\n${HELP}`)
  }
  opts.log?.('installing chromium and fonts-dejavu-core with apt-get')
  const big = { env: { ...env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 * 1024 * 1024 }
  try {
    await run(aptGet, ['update'], big)
    await run(aptGet, ['install', '-y', '--no-install-recommends', 'chromium', 'fonts-dejavu-core'], big)
  } catch (err) {
    // execFile's message carries the command's stderr.
    throw new ChromiumNotFoundError(`apt-get install chromium failed:\n${(err as Error).message.trim()}\n${HELP}`)
  }
  const installed = onPath('chromium', env)
  if (!installed) throw new ChromiumNotFoundError(`apt-get installed chromium, but it is not on PATH (${env.PATH}).\n${HELP}`)
  opts.log?.(`chromium ready at ${installed}`)
  return installed
}
