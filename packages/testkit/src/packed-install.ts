import { execFile } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A CommonJS script that prints the ModuleShape of package `name`. */
function moduleShapeScript (name: string): string {
  return `
    const kinds = (ns) => Object.fromEntries(Object.keys(ns).sort().map((key) => {
      const meta = typeof ns[key] === 'function' ? ns[key][Symbol.for('plugin-meta')] : undefined
      return [key, meta ? 'plugin ' + meta.name : typeof ns[key]]
    }))
    const required = require(${JSON.stringify(name)})
    import(${JSON.stringify(name)}).then((imported) => console.log(JSON.stringify({
      imported: kinds(imported),
      required: kinds(required),
      identical: Object.keys(imported).every((key) => required[key] === imported[key])
    })))
  `
}

/** Each export of a module: its `typeof`, or `plugin <name>` for a fastify-plugin-wrapped function. */
export type ExportKinds = Record<string, string>

export interface ModuleShape {
  /** What `import()` sees. */
  imported: ExportKinds
  /** What `require()` sees (Node ≥ 20.19 loads ES modules with require). */
  required: ExportKinds
  /** Whether every export `require()` returns is the very same value `import()` returns. */
  identical: boolean
}

export interface PackedInstall {
  /** The fresh folder outside the workspace the tarballs were installed into. */
  readonly dir: string
  /** The installed packages' names, in the order given. */
  readonly names: readonly string[]
  /** An installed package's folder, `dir/node_modules/<name>`. */
  root(name: string): string
  /** Writes `source` to `dir/file` and runs it with this process's Node.js; resolves with its stdout. */
  node(file: string, source: string): Promise<string>
  /** An installed package's exports as ESM and as CommonJS consumers see them, from one process. */
  moduleShape(name: string): Promise<ModuleShape>
  /** Removes `dir`. */
  remove(): Promise<void>
}

export interface InstallPackedOptions {
  /** Environment for pnpm, npm and node. Default: process.env. */
  env?: NodeJS.ProcessEnv
}

/**
 * Installs packages as their users get them: `pnpm pack` each (which, like `pnpm publish`, rewrites
 * `catalog:` and `workspace:` specifiers), then one plain `npm install <tarballs…>` into a fresh folder
 * under the OS temp folder, outside the workspace, so nothing can resolve from the workspace's
 * node_modules. npm installs the dependencies and peer dependencies from the registry (through npm's
 * own cache), as for a user.
 */
export async function installPacked (packageDirs: string[], opts: InstallPackedOptions = {}): Promise<PackedInstall> {
  const env = opts.env ?? process.env
  const dir = await mkdtemp(join(tmpdir(), 'reg-packed-'))
  const big = { env, maxBuffer: 16 * 1024 * 1024 }
  try {
    const names: string[] = []
    const tarballs: string[] = []
    for (const packageDir of packageDirs) {
      const { name } = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { name: string }
      const packs = join(dir, 'packs', String(names.length))
      await run('pnpm', ['pack', '--pack-destination', packs], { ...big, cwd: packageDir })
      names.push(name)
      tarballs.push(join(packs, (await readdir(packs))[0]!))
    }
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'packed-install', private: true }))
    await run('npm', ['install', ...tarballs, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { ...big, cwd: dir })
    const node = async (file: string, source: string): Promise<string> => {
      await writeFile(join(dir, file), source)
      const { stdout } = await run(process.execPath, [file], { ...big, cwd: dir })
      return stdout
    }
    return {
      dir,
      names,
      root: (name) => join(dir, 'node_modules', name),
      node,
      moduleShape: async (name) => JSON.parse(await node('module-shape.cjs', moduleShapeScript(name))) as ModuleShape,
      remove: () => rm(dir, { recursive: true, force: true })
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}
