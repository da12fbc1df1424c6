import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { debianMirror, projectRoot } from './ensure-consul.js'
import { isExecutable, onPath, privateApt } from './private-apt.js'

const run = promisify(execFile)

export interface EnsureDockerComposeOptions {
  /** Environment to read DOCKER_COMPOSE_BIN, PATH and REG_DOCKER_COMPOSE_CACHE from. Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Where the fetched packages are unpacked. Default: REG_DOCKER_COMPOSE_CACHE or <project>/.cache/docker-compose. */
  cacheDir?: string
  /** Folder holding the system's apt sources, read to reuse its Debian mirror. Default: /etc/apt. */
  aptDir?: string
  /**
   * The Python that runs the fetched docker-compose, and whose modules decide which dependencies are
   * fetched. Default: Debian's own /usr/bin/python3 (the `python3` on PATH may be a pyenv build).
   */
  python?: string
  /** Debian release to fetch from; it must match the Python above. Default: bookworm (Python 3.11). */
  suite?: string
  /** Called with progress lines while fetching. */
  log?: (line: string) => void
}

export class DockerComposeNotFoundError extends Error {
  code = 'REG_TESTKIT_NO_DOCKER_COMPOSE'
}

const HELP = [
  'Provide docker-compose (v1 or v2) in one of these ways:',
  '  - set DOCKER_COMPOSE_BIN=/path/to/docker-compose',
  '  - install it on PATH: `apt-get install docker-compose` (Debian/Ubuntu), or Docker Desktop\'s compose',
  '  - on a Debian system with apt-get, dpkg-deb and /usr/bin/python3, run `node packages/testkit/dist/cli.js ensure`'
].join('\n')

/** The launcher inside the unpacked tree; one rename publishes the tree and the launcher together. */
function cachedLauncher (cacheDir: string): string {
  return join(cacheDir, 'root', 'docker-compose')
}

/** Single-quoted for sh. */
function shQuote (s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`
}

/**
 * A `docker-compose` that runs Debian's script with the given Python and the unpacked dist-packages.
 * PYTHONPATH is replaced, not extended, and `-s` skips the user's site-packages, so the modules it sees
 * are exactly the ones the import check saw (system ones plus ours). Paths are relative to the script,
 * so the cache can move.
 */
function launcher (python: string): string {
  return [
    '#!/bin/sh',
    '# Debian\'s docker-compose, unpacked by @reg/testkit (src/ensure-docker-compose.ts). Do not edit.',
    // Shell built-ins only, so it runs under any PATH.
    // eslint-disable-next-line no-template-curly-in-string -- sh parameter expansion, not a JS template
    'case $0 in */*) here=$(cd "${0%/*}" && pwd) ;; *) here=$(pwd) ;; esac',
    'unset PYTHONHOME',
    `PYTHONPATH="$here/usr/lib/python3/dist-packages" exec ${shQuote(python)} -s "$here/usr/bin/docker-compose" "$@"`,
    ''
  ].join('\n')
}

/**
 * The Python packages in docker-compose's dependency closure, from `apt-cache depends --recurse`
 * (top-level lines are the closure; `<…>` are virtual packages). Alternatives are followed on both
 * sides, so a backport such as python3-importlib-metadata may appear; fetching it is harmless.
 */
function pythonClosure (depends: string): string[] {
  const names = new Set<string>()
  for (const line of depends.split('\n')) {
    if (/^python3-[a-z0-9][a-z0-9.+-]*$/.test(line)) names.add(line)
  }
  return [...names].sort()
}

/** python3-charset-normalizer → charset_normalizer: the rule holds for every package in the closure. */
function moduleOf (debianPackage: string): string {
  return debianPackage.replace(/^python3-/, '').replaceAll('-', '_')
}

// Prints the modules of argv that the interpreter cannot import. -I: ignore PYTHON* and the user site.
const IMPORT_CHECK = [
  'import importlib, sys',
  'for m in sys.argv[1:]:',
  '    try:',
  '        importlib.import_module(m)',
  '    except Exception:',
  '        print(m)'
].join('\n')

/**
 * The path of a docker-compose executable: DOCKER_COMPOSE_BIN → `docker-compose` on PATH → the project
 * cache → fetched into the cache: Debian's docker-compose package (bookworm: 1.29.2, Python) and the
 * Python packages of its dependency closure that /usr/bin/python3 cannot import, downloaded with apt
 * pointed at private folders and unpacked with `dpkg-deb -x`. The system's apt configuration is only
 * read, and nothing is installed.
 */
export async function ensureDockerCompose (opts: EnsureDockerComposeOptions = {}): Promise<string> {
  const env = opts.env ?? process.env
  const log = opts.log ?? (() => {})

  if (env.DOCKER_COMPOSE_BIN) {
    if (isExecutable(env.DOCKER_COMPOSE_BIN)) return env.DOCKER_COMPOSE_BIN
    throw new DockerComposeNotFoundError(`DOCKER_COMPOSE_BIN=${env.DOCKER_COMPOSE_BIN} is not an executable file.\n${HELP}`)
  }
  const fromPath = onPath('docker-compose', env)
  if (fromPath) return fromPath

  const cacheDir = opts.cacheDir ?? env.REG_DOCKER_COMPOSE_CACHE ?? join(projectRoot, '.cache', 'docker-compose')
  const cached = cachedLauncher(cacheDir)
  if (isExecutable(cached)) return cached

  const python = opts.python ?? '/usr/bin/python3'
  const aptGet = onPath('apt-get', env)
  const aptCache = onPath('apt-cache', env)
  const dpkgDeb = onPath('dpkg-deb', env)
  if (!aptGet || !aptCache || !dpkgDeb || !isExecutable(python)) {
    throw new DockerComposeNotFoundError(`No docker-compose found (DOCKER_COMPOSE_BIN unset, no \`docker-compose\` on PATH, nothing in ${cacheDir}), and this machine lacks what fetching Debian's package needs (apt-get, apt-cache, dpkg-deb and ${python}).\n${HELP}`)
  }
  const aptDir = opts.aptDir ?? '/etc/apt'
  const mirror = debianMirror(aptDir)
  if (!mirror) {
    throw new DockerComposeNotFoundError(`No docker-compose found, and no Debian mirror is named in ${aptDir} to fetch it from.\n${HELP}`)
  }
  const suite = opts.suite ?? 'bookworm'

  log(`fetching docker-compose from Debian ${suite} via ${mirror} into ${cacheDir}`)
  await mkdir(cacheDir, { recursive: true })
  // Fetch into a private folder and rename at the end, so concurrent callers never see half a tree.
  const work = await mkdtemp(join(cacheDir, 'fetch-'))
  const big = { env, maxBuffer: 16 * 1024 * 1024 }
  try {
    const o = await privateApt(work, mirror, suite)
    await run(aptGet, [...o, 'update'], big)
    const { stdout: depends } = await run(aptCache, [
      // --no-pre-depends: python3's Pre-Depends is python3-minimal, the interpreter itself.
      ...o, 'depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks',
      '--no-replaces', '--no-enhances', '--no-pre-depends', 'docker-compose'
    ], big)
    const closure = pythonClosure(depends)
    if (closure.length === 0) throw new Error(`apt-cache found no Python dependencies of docker-compose in ${suite}`)
    const { stdout: missingOut } = await run(python, ['-I', '-c', IMPORT_CHECK, ...closure.map(moduleOf)], big)
    const missing = new Set(missingOut.split('\n').filter(Boolean))
    const wanted = closure.filter((p) => missing.has(moduleOf(p)))
    log(`${python} lacks ${wanted.length} of the ${closure.length} Python packages docker-compose needs${wanted.length > 0 ? `: ${wanted.join(' ')}` : ''}`)
    await run(aptGet, [...o, 'download', 'docker-compose', ...wanted], { ...big, cwd: work })
    const debs = (await readdir(work)).filter((f) => f.endsWith('.deb'))
    if (!debs.some((f) => f.startsWith('docker-compose_'))) throw new Error('apt-get download docker-compose exited 0 but produced no docker-compose .deb')
    for (const deb of debs) await run(dpkgDeb, ['-x', join(work, deb), join(work, 'root')], { env })
    const bin = join(work, 'root', 'docker-compose')
    await writeFile(bin, launcher(python))
    await chmod(bin, 0o755)
    // Proves the import check was right: a missing module fails here, not later in a test.
    const { stdout: version } = await run(bin, ['version', '--short'], { env })
    log(`docker-compose ${version.trim()} unpacked from ${debs.length} packages`)
    await rm(join(cacheDir, 'root'), { recursive: true, force: true })
    await rename(join(work, 'root'), join(cacheDir, 'root'))
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr || (err as Error).message
    throw new DockerComposeNotFoundError(`Fetching Debian's docker-compose package failed:\n${String(detail).trim()}\n${HELP}`)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  log(`docker-compose ready at ${cached}`)
  return cached
}
