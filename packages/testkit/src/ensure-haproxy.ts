import { execFile } from 'node:child_process'
import { delimiter } from 'node:path'
import { promisify } from 'node:util'
import { isExecutable, onPath } from './private-apt.js'

const run = promisify(execFile)

export interface EnsureHaproxyOptions {
  /** Environment to read HAPROXY_BIN and PATH from, and to run apt-get with. Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Folders searched after PATH: apt installs haproxy into /usr/sbin, which a user's PATH often lacks. */
  sbin?: string[]
  /** Whether installing with apt-get is allowed. Default: only when running as root (CI), as for Chromium. */
  install?: boolean
  /** Called with progress lines while installing. */
  log?: (line: string) => void
}

export class HaproxyNotFoundError extends Error {
  code = 'REG_TESTKIT_NO_HAPROXY'
}

const HELP = [
  'Provide HAProxy (the bench\'s P10 baseline) in one of these ways:',
  '  - set HAPROXY_BIN=/path/to/haproxy',
  '  - install it: `sudo apt-get install haproxy` (Debian/Ubuntu) or `brew install haproxy` (macOS)'
].join('\n')

/**
 * The path of an HAProxy binary: HAPROXY_BIN → `haproxy` on PATH (or in /usr/sbin) → installed with
 * `apt-get install haproxy`. Unlike Consul, HAProxy cannot be unpacked into the project cache (its
 * package needs shared libraries a bare image lacks), so it is installed as Debian ships it; that takes
 * root, which CI has (elsewhere the error says how). Only `pnpm bench` (P10, whose baseline it is, also
 * in its smoke round) calls this.
 */
export async function ensureHaproxy (opts: EnsureHaproxyOptions = {}): Promise<string> {
  const env = opts.env ?? process.env
  const log = opts.log ?? (() => {})
  if (env.HAPROXY_BIN) {
    if (isExecutable(env.HAPROXY_BIN)) return env.HAPROXY_BIN
    throw new HaproxyNotFoundError(`HAPROXY_BIN=${env.HAPROXY_BIN} is not an executable file.\n${HELP}`)
  }
  const sbin = opts.sbin ?? ['/usr/sbin', '/usr/local/sbin']
  const search = { PATH: [env.PATH ?? '', ...sbin].join(delimiter) }
  const found = onPath('haproxy', search)
  if (found) return found

  const aptGet = onPath('apt-get', search)
  /* c8 ignore next -- getuid() exists on POSIX only; the Windows half of the optional call cannot run here */
  const install = opts.install ?? process.getuid?.() === 0
  if (!aptGet || !install) {
    throw new HaproxyNotFoundError(`No haproxy found (HAPROXY_BIN unset, none on PATH), and ${aptGet ? 'installing it needs root' : 'this machine has no apt-get to install it'}.\n${HELP}`)
  }
  log('installing haproxy with apt-get')
  try {
    // The package lists may be missing (slim images ship without them) or stale (a 404 on install).
    await run(aptGet, ['update'], { env, maxBuffer: 16 * 1024 * 1024 })
    await run(aptGet, ['install', '-y', '--no-install-recommends', 'haproxy'], { env: { ...env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 16 * 1024 * 1024 })
  } catch (err) {
    // An apt-get that fails silently still leaves its exit status in the message.
    const detail = (err as { stderr?: string }).stderr?.trim() || (err as Error).message
    throw new HaproxyNotFoundError(`apt-get install haproxy failed:\n${detail}\n${HELP}`)
  }
  const installed = onPath('haproxy', search)
  if (!installed) throw new HaproxyNotFoundError(`apt-get install haproxy exited 0 but no haproxy is on PATH or in ${sbin.join(', ')}.\n${HELP}`)
  log(`haproxy ready at ${installed}`)
  return installed
}
