import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, isAbsolute, join } from 'node:path'
import { promisify } from 'node:util'
import { DockerfileParser, type Env, type Instruction, type ModifiableInstruction } from 'dockerfile-ast'
import t from 'tap'
import { parse } from 'yaml'
import { freePorts, projectRoot, serviceUntil, startConsul } from '../src/index.js'
import { argumentsOf, buildContext } from './fixtures/dockerfiles.js'

// apps/user-service/Dockerfile's own build, without a Docker engine: its instructions are read from the file
// and carried out in a temporary folder that stands for the image's filesystem, so this breaks when the
// Dockerfile drifts. The build stage copies the build context in (COPY), runs its pnpm commands (pnpm fetch,
// the offline filtered install, the build, `pnpm deploy --prod --legacy`); the repository copy is then
// deleted, and the final stage's CMD starts the deployed folder with the final stage's ENV, against a real
// Consul agent. What is not done here: the base image itself, apt-get (the compilers are only
// better-sqlite3's fallback) and `npm install -g pnpm@X` (the pnpm on PATH must be that version, checked).

const run = promisify(execFile)
const dockerfileName = 'apps/user-service/Dockerfile'
const text = readFileSync(join(projectRoot, dockerfileName), 'utf8')

// The whole build takes minutes on a busy 2-core machine.
t.setTimeout(15 * 60_000)

/** The stage a COPY reads from (`--from=<stage>`), if not the build context. */
function fromStage (instruction: Instruction): string | undefined {
  return (instruction as ModifiableInstruction).getFlags().find((flag) => flag.getName() === 'from')?.getValue() ?? undefined
}

/** The environment a fresh `RUN` sees: no test runner, coverage or package-script variables leak in. */
function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'XDG_DATA_HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'PNPM_HOME']
  return { ...Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])), ...extra }
}

t.test('the user-service image: built from its Dockerfile\'s commands, started from the pnpm deploy folder', async (t) => {
  // Outside the repository: Node's module lookup must not find the workspace's node_modules above it.
  const fs = mkdtempSync(join(tmpdir(), 'reg-image-'))
  if (process.env.REG_KEEP_IMAGE) t.comment(`stand-in filesystem: ${fs}`)
  t.teardown(() => { if (!process.env.REG_KEEP_IMAGE) rmSync(fs, { recursive: true, force: true }) })
  /** An absolute path in the image, inside the stand-in filesystem. */
  const inImage = (path: string): string => join(fs, path)
  const context = buildContext(projectRoot, dockerfileName)
  const packageManager = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')).packageManager as string

  const stages = new Map<string, { env: Record<string, string>, workdir: string, cmd: string[] }>()
  let stage = { env: {} as Record<string, string>, workdir: '/', cmd: [] as string[] }
  const ran: string[] = []
  const skipped: string[] = []
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword()
    const args = argumentsOf(instruction)
    if (keyword === 'FROM') {
      stage = { env: {}, workdir: '/', cmd: [] }
      const as = args.findIndex((a) => a.toUpperCase() === 'AS')
      stages.set(as >= 0 ? args[as + 1]! : `stage-${stages.size}`, stage)
    } else if (keyword === 'WORKDIR') {
      stage.workdir = isAbsolute(args[0]!) ? args[0]! : join(stage.workdir, args[0]!)
      mkdirSync(inImage(stage.workdir), { recursive: true })
    } else if (keyword === 'ENV') {
      for (const p of (instruction as Env).getProperties()) stage.env[p.getName()] = p.getValue() ?? ''
    } else if (keyword === 'CMD') {
      stage.cmd = args
    } else if (keyword === 'COPY' && !fromStage(instruction)) {
      const destination = inImage(join(stage.workdir, args.at(-1)!))
      for (const source of args.slice(0, -1)) {
        // `.` is the whole context; anything else is a file or folder of it, copied to the destination folder.
        const files = source === '.' ? context : context.filter((f) => f === source || f.startsWith(`${source}/`))
        t.ok(files.length > 0, `COPY ${source}: in the build context`)
        for (const file of files) {
          const target = source === '.' ? join(destination, file) : join(destination, file.slice(dirname(source).length))
          mkdirSync(dirname(target), { recursive: true })
          cpSync(join(projectRoot, file), target)
        }
      }
    } else if (keyword === 'RUN' && stages.size === 1) {
      const command = instruction.getArgumentsContent()!.replace(/\s+/g, ' ')
      if (/^apt-get /.test(command) || /^npm install -g pnpm@/.test(command)) {
        skipped.push(command)
        continue
      }
      // Absolute paths (the deploy target, /out) are paths in the image.
      const local = command.replace(/(^|\s)(\/[\w./-]+)/g, (_, space: string, path: string) => `${space}${inImage(path)}`)
      t.comment(`RUN ${command}`)
      const started = Date.now()
      await run('sh', ['-c', local], { cwd: inImage(stage.workdir), env: cleanEnv({ CI: 'true' }), maxBuffer: 64 * 1024 * 1024 }).catch((err: Error & { stdout?: string, stderr?: string }) => {
        throw new Error(`RUN ${command} failed:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`)
      })
      t.comment(`  done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      ran.push(command)
    }
  }

  t.match(ran, [/^pnpm fetch$/, /^pnpm install --frozen-lockfile --offline --filter/, /^pnpm --filter .* run build$/, /^pnpm --filter @reg\/user-service deploy --prod /],
    'the build stage ran fetch, the offline install, the build and the deploy')
  t.equal(skipped.length, 2, `skipped only the image setup: ${skipped.join(' | ')}`)
  const pnpmPin = skipped.find((c) => c.startsWith('npm install -g pnpm@'))?.split('@')[1]
  t.equal(`pnpm@${pnpmPin}`, packageManager, 'the image installs the pnpm of package.json\'s packageManager')
  t.equal((await run('pnpm', ['--version'])).stdout.trim(), pnpmPin, 'and that is the pnpm that ran these commands')

  // The final stage: `COPY --from=build <out> ./` into its WORKDIR, then CMD there.
  const final = [...stages.values()].at(-1)!
  const fromBuild = DockerfileParser.parse(text).getInstructions().find((i) => i.getKeyword() === 'COPY' && fromStage(i) === 'build')
  const out = inImage(argumentsOf(fromBuild!)[0]!)
  const app = inImage(final.workdir)
  cpSync(out, app, { recursive: true, verbatimSymlinks: true })
  // Nothing outside the image's WORKDIR is left to lean on.
  rmSync(inImage('/repo'), { recursive: true, force: true })
  rmSync(out, { recursive: true, force: true })

  t.ok(existsSync(join(app, 'dist/server.js')), 'the deploy folder has the built app')
  for (const pkg of ['@reg/fastify-consul', '@reg/fastify-health', '@reg/app-kit', 'better-sqlite3']) {
    const real = realpathSync(join(app, 'node_modules', pkg))
    t.ok(real.startsWith(`${realpathSync(app)}/`), `${pkg} resolves inside the folder`)
  }
  t.ok(existsSync(join(app, 'node_modules/@reg/fastify-consul/dist/index.js')), 'the workspace packages come built')
  t.notOk(existsSync(join(app, 'node_modules/tap')), 'no devDependencies (--prod)')
  // The legacy deploy resolves version ranges again: what it installed must still be what the lockfile pins.
  const locked = new Set(Object.keys((parse(readFileSync(join(projectRoot, 'pnpm-lock.yaml'), 'utf8')) as { packages: object }).packages))
  const store = join(app, 'node_modules/.pnpm')
  const deployed = readdirSync(store).filter((d) => !d.startsWith('@reg+') && existsSync(join(store, d, 'node_modules'))).flatMap((d) => {
    const name = d.startsWith('@') ? d.replace('+', '/').split('@').slice(0, 2).join('@') : d.split('@')[0]!
    const { version } = JSON.parse(readFileSync(join(store, d, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
    return [`${name}@${version}`]
  })
  t.ok(deployed.length > 20, `${deployed.length} packages deployed`)
  t.same(deployed.filter((p) => !locked.has(p)), [], 'each at a version the lockfile pins')
  t.same(final.cmd, ['node', 'dist/server.js'])
  t.equal(final.env.NODE_ENV, 'production')

  const agent = await startConsul({ t })
  const [port] = await freePorts(1)
  const serviceId = 'user-service-image'
  const env = cleanEnv({
    ...final.env,
    // Tests listen on loopback only; the image's 0.0.0.0 makes the plugin advertise the container address.
    HOST: '127.0.0.1',
    PORT: String(port),
    // The admin listener on a port the OS picks: its default, PORT + 1000, may be taken, or above 65535 for a
    // free port over 64535, which the app refuses at start (it failed clean-clone run ci-v that way).
    ADMIN_PORT: '0',
    ADMIN_HOST: '127.0.0.1',
    USERS_DB: join(fs, 'data', 'users.db'),
    CONSUL_HTTP_ADDR: agent.address,
    SERVICE_ID: serviceId
  })
  mkdirSync(join(fs, 'data'))
  const [command, ...argv] = final.cmd
  const child = spawn(command === 'node' ? process.execPath : command!, argv, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  try {
    const entries = await serviceUntil(agent.url, 'user-service', (e) => e.some((x) => x.Service.ID === serviceId), { passing: true, timeoutMs: 60_000 })
    t.equal(entries.find((x) => x.Service.ID === serviceId)?.Service.Port, port, 'registered in Consul and passing, on its port')
  } catch (err) {
    t.comment(output)
    throw err
  }
  const health = await fetch(`http://127.0.0.1:${port}/health`)
  t.equal(health.status, 200, '/health answers 200')
  const created = await fetch(`http://127.0.0.1:${port}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Ada', email: 'ada@example.com' }) })
  t.equal(created.status, 201, 'better-sqlite3 works from the deploy folder')
  t.ok(existsSync(join(fs, 'data', 'users.db')), 'the database lives where USERS_DB says')

  // The image's HEALTHCHECK command, run as Docker would (inside the container, with its env).
  const healthcheck = DockerfileParser.parse(text).getInstructions().find((i) => i.getKeyword() === 'HEALTHCHECK')!
  const check = JSON.parse(healthcheck.getRawArgumentsContent()!.replace(/^.*?CMD\s+/s, '')) as string[]
  await t.resolves(run(check[0] === 'node' ? process.execPath : check[0]!, check.slice(1), { env }), 'the HEALTHCHECK command passes')

  child.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'SIGTERM: a graceful exit')
  await serviceUntil(agent.url, 'user-service', (e) => !e.some((x) => x.Service.ID === serviceId), { timeoutMs: 10_000 })
  t.pass('and it deregistered')
  if (!t.passing()) t.comment(output)
})
