import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parse } from 'yaml'
import { DockerComposeNotFoundError, ensureDockerCompose, projectRoot } from '../src/index.js'

const run = promisify(execFile)

// ── The repository's docker-compose.yml, validated by a real docker-compose ──────────────────────────────
// `pnpm test` fetches it once beforehand (`cli.js ensure`); run alone, this file fetches it itself.

interface Service {
  image?: string
  build?: { context: string, dockerfile?: string }
  environment?: Record<string, string | null>
  healthcheck?: { test?: string[] | string, disable?: boolean }
  depends_on?: Record<string, { condition?: string }>
  stop_grace_period?: string
  volumes?: string[]
  ports?: Array<{ published?: number | string, target?: number }>
}

/** Compose durations: `20s`, `1m30s`, `1500ms`. */
function seconds (duration: string): number {
  const units: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }
  let total = 0
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)) total += Number(m[1]) * units[m[2]!]!
  return total
}

t.test('docker-compose.yml', async (t) => {
  const compose = await ensureDockerCompose({ log: (line) => t.comment(line) })
  const file = join(projectRoot, 'docker-compose.yml')

  t.test('`docker-compose config -q` accepts it', async (t) => {
    const { stdout, stderr } = await run(compose, ['-f', file, 'config', '-q'], { cwd: projectRoot })
    t.equal(stdout, '')
    t.equal(stderr, '', 'not even a warning')
  })

  t.test('`docker-compose config -q` rejects broken files', async (t) => {
    // The mistakes this test exists to catch; each must fail, naming what is wrong.
    const broken: Record<string, [string, RegExp]> = {
      'typo.yml': ['services:\n  web:\n    image: nginx\n    healtcheck:\n      test: ["CMD", "true"]\n', /healtcheck/],
      'undefined-dependency.yml': ['services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: service_healthy\n', /db/],
      'bad-condition.yml': ['services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: service_happy\n  db:\n    image: postgres\n', /service_happy/],
      'bad-yaml.yml': ['services:\n  web:\n    image: nginx\n     ports: [80]\n', /mapping values are not allowed/],
      'missing-build-context.yml': ['services:\n  web:\n    build:\n      context: ./nope\n', /nope/]
    }
    const dir = t.testdir(Object.fromEntries(Object.entries(broken).map(([name, [text]]) => [name, text])))
    for (const [name, [, why]] of Object.entries(broken)) {
      const err = await run(compose, ['-f', join(dir, name), 'config', '-q'], { cwd: dir }).then(() => undefined, (e: unknown) => e)
      t.ok(err, `${name} is rejected`)
      t.not((err as { code?: number }).code, 0, `${name}: non-zero exit`)
      t.match((err as { stderr?: string }).stderr, why, `${name}: the error names the problem`)
    }
  })

  t.test('structure: healthchecks everywhere, pinned Consul, apps wired to it', async (t) => {
    // The normalised output: anchors and merge keys resolved, exactly what Compose would run.
    const { stdout } = await run(compose, ['-f', file, 'config'], { cwd: projectRoot })
    const services = (parse(stdout) as { services: Record<string, Service> }).services
    const names = Object.keys(services)
    t.ok(names.length >= 5, `services: ${names.join(', ')}`)

    for (const [name, s] of Object.entries(services)) {
      t.ok(s.healthcheck?.test && s.healthcheck.test.length > 0 && s.healthcheck.disable !== true, `${name} has a healthcheck`)
    }

    const consul = services.consul
    t.ok(consul, 'a service named consul (the apps reach it as consul:8500)')
    t.match(consul?.image, /^hashicorp\/consul:\d+\.\d+\.\d+$/, 'the official image, pinned to an exact version (not latest)')
    t.ok(consul?.ports?.some((p) => Number(p.published) === 8500), 'HTTP API and UI published on 8500')

    const apps = Object.entries(services).filter(([name]) => name !== 'consul' && name !== 'prometheus')
    for (const [name, s] of apps) {
      t.equal(s.environment?.CONSUL_HTTP_ADDR, 'consul:8500', `${name}: CONSUL_HTTP_ADDR`)
      t.equal(s.environment?.HOST, '0.0.0.0', `${name}: binds 0.0.0.0, so it advertises its container address`)
      // Prometheus is another container: the admin listener (/metrics) must not stay on the container's loopback.
      t.equal(s.environment?.ADMIN_HOST, '0.0.0.0', `${name}: its admin listener binds 0.0.0.0, so Prometheus reaches /metrics`)
      t.equal(s.depends_on?.consul?.condition, 'service_healthy', `${name}: waits for a healthy Consul`)
      t.ok(seconds(s.stop_grace_period ?? '10s') >= 15, `${name}: stop_grace_period ${s.stop_grace_period} outlasts the 10 s graceful shutdown`)
      t.ok(s.build?.dockerfile && existsSync(join(s.build.context, s.build.dockerfile)), `${name}: built from a Dockerfile that exists`)
    }

    const replicas = apps.filter(([, s]) => s.build?.dockerfile === 'apps/user-service/Dockerfile')
    t.equal(replicas.length, 3, 'user-service × 3')
    t.equal(new Set(replicas.map(([, s]) => s.environment?.SERVICE_ID)).size, 3, 'each replica has its own SERVICE_ID')
    for (const [name, s] of replicas) {
      t.equal(s.environment?.SERVICE_NAME, 'user-service', `${name}: SERVICE_NAME`)
      t.equal(s.environment?.USERS_DB, '/data/users.db', `${name}: USERS_DB`)
      t.ok(s.volumes?.some((v) => /^users-db:\/data(:|$)/.test(v)), `${name}: the shared users-db volume on /data`)
    }

    const prometheus = services.prometheus
    t.match(prometheus?.image, /^prom\/prometheus:v\d+\.\d+\.\d+$/, 'Prometheus pinned to an exact version')
    t.ok(prometheus?.volumes?.some((v) => /deploy\/prometheus\.yml:\/etc\/prometheus\/prometheus\.yml(:ro)?$/.test(v)), 'with deploy/prometheus.yml, the file the scrape test checks')
    t.equal(prometheus?.depends_on?.consul?.condition, 'service_healthy', 'it discovers the apps through Consul')
    t.ok(prometheus?.ports?.some((p) => Number(p.published) === 9090), 'published on 9090')

    const gateway = services.gateway
    t.equal(gateway?.build?.dockerfile, 'apps/gateway/Dockerfile')
    t.equal(gateway?.environment?.PORT, '8080')
    t.ok(gateway?.ports?.some((p) => Number(p.published) === 8080 && p.target === 8080), 'gateway published on 8080')
    // docker-compose 1.29 keeps a port with a host address in its short form; Compose v2 writes host_ip.
    const adminPublished = (p: unknown): boolean => typeof p === 'string'
      ? /^127\.0\.0\.1:9080:9080(\/tcp)?$/.test(p)
      : (p as { host_ip?: string, published?: number | string, target?: number }).host_ip === '127.0.0.1' && Number((p as { published?: number | string }).published) === 9080 && (p as { target?: number }).target === 9080
    t.ok(gateway?.ports?.some(adminPublished), 'its admin port (PORT + 1000) published on the host\'s loopback only')
  })
})

// ── ensureDockerCompose: where the binary comes from ────────────────────────────────────────────────────

async function script (dir: string, name: string, body: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, name)
  await writeFile(file, `#!/bin/sh\n${body}\n`)
  await chmod(file, 0o755)
  return file
}

/** Single-quoted for sh. */
const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
const fake = (dir: string, name: string): Promise<string> => script(dir, name, 'echo fake')
const sources = { 'sources.list': 'deb http://mirror.example/debian bookworm main\n' }

t.test('DOCKER_COMPOSE_BIN wins over everything else', async (t) => {
  const dir = t.testdir()
  const bin = await fake(dir, 'my-compose')
  t.equal(await ensureDockerCompose({ env: { DOCKER_COMPOSE_BIN: bin, PATH: '' } }), bin)
})

t.test('a DOCKER_COMPOSE_BIN that is not executable is a clear error, not a silent fallback', async (t) => {
  await t.rejects(ensureDockerCompose({ env: { DOCKER_COMPOSE_BIN: '/nonexistent/docker-compose', PATH: process.env.PATH } }), {
    code: 'REG_TESTKIT_NO_DOCKER_COMPOSE',
    message: /DOCKER_COMPOSE_BIN=\/nonexistent\/docker-compose is not an executable/
  })
})

t.test('then `docker-compose` on PATH', async (t) => {
  const dir = t.testdir()
  const bin = await fake(join(dir, 'bin'), 'docker-compose')
  t.equal(await ensureDockerCompose({ env: { PATH: `/nonexistent:${join(dir, 'bin')}` }, cacheDir: join(dir, 'cache') }), bin)
})

t.test('then the project cache', async (t) => {
  const dir = t.testdir()
  const bin = await fake(join(dir, 'cache', 'root'), 'docker-compose')
  t.equal(await ensureDockerCompose({ env: { PATH: '' }, cacheDir: join(dir, 'cache') }), bin)
  t.equal(await ensureDockerCompose({ env: { PATH: '', REG_DOCKER_COMPOSE_CACHE: join(dir, 'cache') } }), bin, 'REG_DOCKER_COMPOSE_CACHE names the cache')
})

t.test('nothing can provide it: the error says what to do', async (t) => {
  const dir = t.testdir()
  const err = await ensureDockerCompose({ env: {}, cacheDir: join(dir, 'cache') }).catch((e: unknown) => e)
  t.ok(err instanceof DockerComposeNotFoundError)
  t.equal((err as DockerComposeNotFoundError).code, 'REG_TESTKIT_NO_DOCKER_COMPOSE')
  t.match((err as Error).message, /DOCKER_COMPOSE_BIN/)
  t.match((err as Error).message, /apt-get install docker-compose/)
})

t.test('each tool the fetch needs is checked before anything runs', async (t) => {
  const dir = t.testdir({ apt: sources })
  const tools = ['apt-get', 'apt-cache', 'dpkg-deb']
  const python = await fake(dir, 'python3')
  // Every tool missing in turn, then a Python that does not exist.
  for (const missing of [...tools, 'python']) {
    const bins = join(dir, `without-${missing}`)
    for (const tool of tools) if (tool !== missing) await fake(bins, tool)
    await t.rejects(ensureDockerCompose({
      env: { PATH: bins },
      cacheDir: join(dir, 'cache'),
      aptDir: join(dir, 'apt'),
      python: missing === 'python' ? join(dir, 'no-python3') : python
    }), { code: 'REG_TESTKIT_NO_DOCKER_COMPOSE', message: /lacks what fetching Debian's package needs/ }, `without ${missing}`)
  }
})

t.test('apt present but no Debian mirror named: clear error', async (t) => {
  const dir = t.testdir({ apt: { 'sources.list.d': {} } })
  const bins = join(dir, 'bin')
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb']) await fake(bins, tool)
  await t.rejects(ensureDockerCompose({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt'), python: await fake(dir, 'python3') }), {
    code: 'REG_TESTKIT_NO_DOCKER_COMPOSE',
    message: /no Debian mirror/
  })
})

/**
 * Stand-ins for apt-get, apt-cache, dpkg-deb and python3 that record their arguments (shell built-ins and
 * absolute paths only, so PATH can hold nothing else). The real fetch runs in `cli.js ensure` and in the
 * first test of this file when the cache is empty.
 */
async function fakeToolchain (dir: string, opts: { missing?: string, aptGet?: string, aptCache?: string, version?: string } = {}): Promise<{ bins: string, python: string, calls: string }> {
  const bins = join(dir, 'bin')
  const calls = join(dir, 'calls.log')
  await script(bins, 'apt-get', opts.aptGet ?? [
    `echo "apt-get $*" >> ${q(calls)}`,
    // `download a b c` leaves a_1.0_all.deb b_1.0_all.deb … in the working directory, as apt does.
    'd=0; for a in "$@"; do if [ $d = 1 ]; then : > "$a"_1.0_all.deb; fi; if [ "$a" = download ]; then d=1; fi; done'
  ].join('\n'))
  await script(bins, 'apt-cache', opts.aptCache ?? [
    `echo "apt-cache $*" >> ${q(calls)}`,
    // The shape of `apt-cache depends --recurse`: the closure at column 0, virtual packages in <…>.
    "printf 'docker-compose\\n  Depends: python3-docker\\n  Depends: <python3:any>\\npython3-docker\\n  Depends: python3-charset-normalizer\\n  Depends: python3-yaml\\npython3-charset-normalizer\\npython3-yaml\\n<python3:any>\\npython3\\nlibc6\\n'"
  ].join('\n'))
  await script(bins, 'dpkg-deb', [
    `echo "dpkg-deb $*" >> ${q(calls)}`,
    '/bin/mkdir -p "$3/usr/bin" "$3/usr/lib/python3/dist-packages" && : > "$3/usr/bin/docker-compose"'
  ].join('\n'))
  const python = await script(dir, 'python3', [
    // The import check: `-I -c CODE module…` prints the modules it cannot import.
    `if [ "$1" = -I ]; then echo "python3 $*" >> ${q(calls)}; shift 3; for m in "$@"; do case " ${opts.missing ?? ''} " in *" $m "*) echo "$m" ;; esac; done; exit 0; fi`,
    // The launcher: `-s …/usr/bin/docker-compose version --short`.
    `echo "launcher $* PYTHONPATH=$PYTHONPATH" >> ${q(calls)}`,
    opts.version ?? 'echo 1.29.2'
  ].join('\n'))
  return { bins, python, calls }
}

t.test('fetch: apt is pointed at private folders, and only what Python lacks is downloaded and unpacked', async (t) => {
  const dir = t.testdir({ apt: { 'sources.list.d': { 'debian.sources': 'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n' } } })
  const { bins, python, calls } = await fakeToolchain(dir, { missing: 'docker charset_normalizer' })
  const lines: string[] = []
  const cacheDir = join(dir, 'cache')
  const bin = await ensureDockerCompose({ env: { PATH: bins }, cacheDir, aptDir: join(dir, 'apt'), python, suite: 'trixie', log: (l) => lines.push(l) })
  t.equal(bin, join(cacheDir, 'root', 'docker-compose'))

  const log = await readFile(calls, 'utf8')
  t.match(log, /Dir::Etc::SourceParts=\/dev\/null/, 'the system source parts are ignored')
  t.match(log, /Dir::State::Lists=.*cache\/fetch-/, 'lists live in a private folder')
  t.match(log, /apt-get .* update\n/)
  t.match(log, /apt-cache .* depends --recurse .*docker-compose\n/)
  t.match(log, /python3 -I -c [\s\S]*? charset_normalizer docker yaml\n/, 'every Python package of the closure is checked, under its module name')
  t.match(log, /apt-get .* download docker-compose python3-charset-normalizer python3-docker\n/, 'only the missing ones are downloaded')
  t.equal(log.match(/dpkg-deb -x /g)?.length, 3, 'every .deb is unpacked')
  t.match(lines[0], /Debian trixie via http:\/\/mirror\.example\/debian/, 'the mirror comes from the system sources')
  t.match(lines[1], /lacks 2 of the 3 .*: python3-charset-normalizer python3-docker/)
  t.match(lines.at(-1), /ready at/)

  // The launcher runs Debian's script with our dist-packages, wherever the cache is.
  const { stdout } = await run(bin, ['config', '-q'], { env: { PATH: '', PYTHONPATH: '/elsewhere' } })
  t.equal(stdout.trim(), '1.29.2')
  const last = (await readFile(calls, 'utf8')).trim().split('\n').at(-1)
  t.equal(last, `launcher -s ${join(cacheDir, 'root', 'usr', 'bin', 'docker-compose')} config -q PYTHONPATH=${join(cacheDir, 'root', 'usr', 'lib', 'python3', 'dist-packages')}`)
  t.equal(await ensureDockerCompose({ env: { PATH: bins }, cacheDir, python }), bin, 'the next call finds the cache')
})

t.test('fetch: a Python that has every dependency gets docker-compose alone', async (t) => {
  const dir = t.testdir({ apt: sources, "it's here": {} })
  const { bins, python, calls } = await fakeToolchain(join(dir, "it's here"))
  const lines: string[] = []
  const bin = await ensureDockerCompose({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt'), python, log: (l) => lines.push(l) })
  t.match(await readFile(calls, 'utf8'), /download docker-compose\n/)
  t.match(lines[0], /Debian bookworm/, 'bookworm by default: its Python is 3.11, like the system one')
  t.match(lines[1], /lacks 0 of the 3 Python packages docker-compose needs$/)
  const { stdout } = await run(bin, ['version'], { env: {} })
  t.equal(stdout.trim(), '1.29.2', 'a quote in the Python path survives the launcher')
})

t.test('fetch failures are reported with their cause and the help text, and leave no cache behind', async (t) => {
  const cases: Array<[string, Parameters<typeof fakeToolchain>[1], RegExp]> = [
    ['apt-get fails loudly', { aptGet: 'echo "E: could not resolve mirror" >&2; exit 100' }, /could not resolve mirror/],
    ['apt-get fails silently', { aptGet: 'exit 100' }, /Command failed: .*apt-get/],
    ['no Python packages in the closure', { aptCache: 'echo docker-compose' }, /no Python dependencies of docker-compose/],
    ['download produces nothing', { aptGet: 'exit 0' }, /produced no docker-compose \.deb/],
    ['the unpacked docker-compose does not run', { version: 'echo "ModuleNotFoundError: No module named \'docker\'" >&2; exit 1' }, /No module named 'docker'/]
  ]
  for (const [name, opts, cause] of cases) {
    t.test(name, async (t) => {
      const dir = t.testdir({ apt: sources })
      const { bins, python } = await fakeToolchain(dir, opts)
      const cacheDir = join(dir, 'cache')
      await t.rejects(ensureDockerCompose({ env: { PATH: bins }, cacheDir, aptDir: join(dir, 'apt'), python }), {
        code: 'REG_TESTKIT_NO_DOCKER_COMPOSE',
        message: new RegExp(`Fetching Debian's docker-compose package failed:\\n[\\s\\S]*${cause.source}[\\s\\S]*DOCKER_COMPOSE_BIN`)
      })
      t.notOk(existsSync(join(cacheDir, 'root')), 'no cache')
      t.same(await readdir(cacheDir), [], 'the private fetch folder is removed')
    })
  }
  t.test('without aptDir the system\'s own /etc/apt is read; whatever it names, the stand-in apt fails cleanly', async (t) => {
    const dir = t.testdir()
    const { bins, python } = await fakeToolchain(dir, { aptGet: 'exit 100' })
    await t.rejects(ensureDockerCompose({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), python }), { code: 'REG_TESTKIT_NO_DOCKER_COMPOSE' })
  })
})
