import { execFile } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { isExecutable, onPath, privateApt } from './private-apt.js'

const run = promisify(execFile)

/** The project root: dist/ensure-consul.js → packages/testkit/dist → ../../.. */
export const projectRoot = fileURLToPath(new URL('../../../', import.meta.url))

export interface EnsureConsulOptions {
  /** Environment to read CONSUL_BIN, PATH and REG_CONSUL_CACHE from. Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Where the fetched binary is cached. Default: REG_CONSUL_CACHE or <project>/.cache/consul. */
  cacheDir?: string
  /** Folder holding the system's apt sources, read to reuse its Debian mirror. Default: /etc/apt. */
  aptDir?: string
  /** Called with progress lines while fetching. */
  log?: (line: string) => void
}

export class ConsulNotFoundError extends Error {
  code = 'REG_TESTKIT_NO_CONSUL'
}

const HELP = [
  'Provide a Consul binary in one of these ways:',
  '  - set CONSUL_BIN=/path/to/consul',
  '  - install it on PATH: `brew install consul` (macOS) or https://developer.hashicorp.com/consul/install',
  '  - run one in Docker and point CONSUL_HTTP_ADDR at it: `docker compose up consul`'
].join('\n')

/**
 * The Debian archive URI the system's own apt sources already use, so we never hard-code a mirror.
 * deb822 `.sources` files first (bookworm's default), then one-line `sources.list` entries.
 */
export function debianMirror (aptDir = '/etc/apt'): string | undefined {
  const candidates: string[] = []
  const partsDir = join(aptDir, 'sources.list.d')
  let parts: string[] = []
  try {
    parts = readdirSync(partsDir).sort()
  } catch {}
  for (const file of parts) {
    const text = readFileSync(join(partsDir, file), 'utf8')
    if (file.endsWith('.sources')) {
      for (const m of text.matchAll(/^URIs:\s*(.+)$/gim)) candidates.push(...m[1]!.trim().split(/\s+/))
    } else if (file.endsWith('.list')) {
      candidates.push(...debLines(text))
    }
  }
  try {
    candidates.push(...debLines(readFileSync(join(aptDir, 'sources.list'), 'utf8')))
  } catch {}
  // The security archive has no `bullseye main`, only `bullseye-security`.
  return candidates.find((uri) => /^https?:\/\//.test(uri) && !/security/.test(uri))
}

function debLines (text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line)
    if (m) out.push(m[1]!)
  }
  return out
}

function cachedBinary (cacheDir: string): string {
  return join(cacheDir, 'root', 'usr', 'bin', 'consul')
}

/**
 * The path of a Consul binary: CONSUL_BIN → `consul` on PATH → the project cache → fetched into the
 * cache from Debian bullseye (consul 1.8.7) with apt pointed at private folders. The system's apt
 * configuration is only read, never changed.
 */
export async function ensureConsul (opts: EnsureConsulOptions = {}): Promise<string> {
  const env = opts.env ?? process.env
  const log = opts.log ?? (() => {})

  if (env.CONSUL_BIN) {
    if (isExecutable(env.CONSUL_BIN)) return env.CONSUL_BIN
    throw new ConsulNotFoundError(`CONSUL_BIN=${env.CONSUL_BIN} is not an executable file.\n${HELP}`)
  }
  const fromPath = onPath('consul', env)
  if (fromPath) return fromPath

  const cacheDir = opts.cacheDir ?? env.REG_CONSUL_CACHE ?? join(projectRoot, '.cache', 'consul')
  const cached = cachedBinary(cacheDir)
  if (isExecutable(cached)) return cached

  const aptGet = onPath('apt-get', env)
  const dpkgDeb = onPath('dpkg-deb', env)
  if (!aptGet || !dpkgDeb) {
    throw new ConsulNotFoundError(`No Consul binary found (CONSUL_BIN unset, no \`consul\` on PATH, nothing in ${cacheDir}), and this machine has no apt-get/dpkg-deb to fetch Debian's package.\n${HELP}`)
  }
  const aptDir = opts.aptDir ?? '/etc/apt'
  const mirror = debianMirror(aptDir)
  if (!mirror) {
    throw new ConsulNotFoundError(`No Consul binary found, and no Debian mirror is named in ${aptDir} to fetch it from.\n${HELP}`)
  }

  log(`fetching consul from Debian bullseye via ${mirror} into ${cacheDir}`)
  await mkdir(cacheDir, { recursive: true })
  // Fetch into a private folder and rename at the end, so concurrent callers never see half a binary.
  const work = await mkdtemp(join(cacheDir, 'fetch-'))
  try {
    const o = await privateApt(work, mirror, 'bullseye')
    await run(aptGet, [...o, 'update'], { env, maxBuffer: 16 * 1024 * 1024 })
    await run(aptGet, [...o, 'download', 'consul'], { cwd: work, env, maxBuffer: 16 * 1024 * 1024 })
    const deb = (await readdir(work)).find((f) => /^consul_.*\.deb$/.test(f))
    if (!deb) throw new Error('apt-get download consul exited 0 but produced no .deb')
    await run(dpkgDeb, ['-x', join(work, deb), join(work, 'root')], { env })
    await rm(join(cacheDir, 'root'), { recursive: true, force: true })
    await rename(join(work, 'root'), join(cacheDir, 'root'))
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr ?? (err as Error).message
    throw new ConsulNotFoundError(`Fetching Debian's consul package failed:\n${String(detail).trim()}\n${HELP}`)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  log(`consul ready at ${cached}`)
  return cached
}
