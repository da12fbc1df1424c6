import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { delimiter, dirname, join, resolve } from 'node:path'
import { projectRoot } from './ensure-consul.js'
import { ensureNode, nodeVersion, type EnsureNodeOptions } from './ensure-node.js'

export interface TestOnNodeOptions extends Pick<EnsureNodeOptions, 'cacheDir' | 'log'> {
  /** Node.js majors to run on, each at its pinned release (NODE_VERSIONS). */
  majors: number[]
  /** Package folders, relative to `root`. Each must have tap in its node_modules/.bin. */
  packages: string[]
  /** Extra arguments for tap. */
  tapArgs?: string[]
  /**
   * Test files to run per package (relative to it), keyed like `packages`; a package without an entry
   * runs its whole suite. What differs between Node.js lines is OpenSSL, sockets and undici's
   * internals, so a subset that covers them finds what a second full run would, in a fraction of it.
   */
  files?: Readonly<Record<string, readonly string[]>>
  /** The workspace root the package folders are relative to. Default: the project root. */
  root?: string
  /** Environment for the suites; PATH gets the chosen node's folder in front. Default: process.env. */
  env?: NodeJS.ProcessEnv
}

export interface SuiteRun {
  package: string
  major: number
  version: string
  /** tap's exit code; null when it was killed by a signal. */
  code: number | null
  ok: boolean
}

/**
 * Where one extra-version run's saved results are filed: `<pkg>/.tap/node<major>/test-results`, beside
 * the default runner's `<pkg>/.tap/test-results`, so the CI counter sees both and neither replaces the other.
 */
export function resultsDir (packageDir: string, major: number): string {
  return join(packageDir, '.tap', `node${major}`, 'test-results')
}

/** Runs tap in `cwd` with `node` first on PATH, so tap, its test processes and anything they spawn use it. */
async function runTap (node: string, cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  const child = spawn(join(cwd, 'node_modules', '.bin', 'tap'), args, {
    cwd,
    stdio: 'inherit',
    env: { ...env, PATH: `${dirname(node)}${delimiter}${env.PATH ?? ''}` }
  })
  // CI stops a run with SIGTERM: pass it on, so the finally below still puts the default results back.
  const forward = (signal: NodeJS.Signals): void => { child.kill(signal) }
  process.on('SIGTERM', forward)
  process.on('SIGINT', forward)
  try {
    return await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code) => resolve(code))
    })
  } finally {
    process.off('SIGTERM', forward)
    process.off('SIGINT', forward)
  }
}

/** What tap writes under `<pkg>/.tap` on every run, whatever its options: the default runner's are kept. */
const TAP_OUTPUTS = ['test-results', 'coverage', 'processinfo']

/**
 * Runs each package's tap suite on each Node.js major, one after the other (the CI box has 2 cores and
 * every suite already runs 2 jobs). tap always saves results into `<pkg>/.tap/test-results` (and clears
 * `.tap/coverage`), so the default runner's outputs are moved aside for the duration and put back
 * afterwards, and each extra run's results are moved to `resultsDir(pkg, major)`. Coverage is off: the 100% gate is a property of
 * the code and its tests, enforced once by the default runner; here the question is whether they pass.
 */
export async function testOnNode (opts: TestOnNodeOptions): Promise<SuiteRun[]> {
  const env = opts.env ?? process.env
  const log = opts.log ?? (() => {})
  const root = opts.root ?? projectRoot
  const nodes: Array<{ major: number, bin: string, version: string }> = []
  for (const major of opts.majors) {
    const bin = await ensureNode(major, { env, cacheDir: opts.cacheDir, log })
    nodes.push({ major, bin, version: await nodeVersion(bin, env) })
  }

  const runs: SuiteRun[] = []
  for (const pkg of opts.packages) {
    const dir = resolve(root, pkg)
    const saved = join(dir, '.tap', 'test-results')
    const held = join(dir, '.tap', 'default-runner-held')
    await rm(held, { recursive: true, force: true })
    await mkdir(held, { recursive: true })
    for (const name of TAP_OUTPUTS) {
      if (existsSync(join(dir, '.tap', name))) await rename(join(dir, '.tap', name), join(held, name))
    }
    try {
      for (const { major, bin, version } of nodes) {
        log(`${pkg} on Node.js ${version}`)
        const target = resultsDir(dir, major)
        await rm(dirname(target), { recursive: true, force: true })
        const code = await runTap(bin, dir, ['--disable-coverage', ...(opts.tapArgs ?? []), ...(opts.files?.[pkg] ?? [])], env)
        if (existsSync(saved)) {
          await mkdir(dirname(target), { recursive: true })
          await rename(saved, target)
        }
        runs.push({ package: pkg, major, version, code, ok: code === 0 })
      }
    } finally {
      for (const name of TAP_OUTPUTS) {
        await rm(join(dir, '.tap', name), { recursive: true, force: true })
        if (existsSync(join(held, name))) await rename(join(held, name), join(dir, '.tap', name))
      }
      await rm(held, { recursive: true, force: true })
    }
  }
  return runs
}
