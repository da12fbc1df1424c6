import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { validate } from 'dockerfile-utils'
import { projectRoot } from '../src/index.js'
import { buildContext, contextSources, dockerfilesIn, dockerignoreFor, ignoreRules, missingSources } from './fixtures/dockerfiles.js'

// The repository's Dockerfiles, checked without a Docker engine: every COPY/ADD source is in the build
// context Docker would send (the repository root, as docker-compose.yml and each Dockerfile's header say),
// after the Dockerfile's ignore file; and each passes dockerfile-utils' linter (the Docker language
// server's). test/docker-image.test.ts runs their build commands.

const dockerfiles = dockerfilesIn(projectRoot)

t.test('the repository has Dockerfiles, and each has its own ignore file', async (t) => {
  t.same(dockerfiles, ['apps/gateway/Dockerfile', 'apps/user-service/Dockerfile'])
  for (const file of dockerfiles) t.equal(dockerignoreFor(projectRoot, file), `${file}.dockerignore`, file)
})

for (const file of dockerfiles) {
  t.test(file, async (t) => {
    const text = readFileSync(join(projectRoot, file), 'utf8')
    const context = buildContext(projectRoot, file)

    t.test('every COPY/ADD source is in the build context', async (t) => {
      const sources = contextSources(text)
      t.ok(sources.length >= 2, `${sources.length} sources: ${sources.map((s) => s.source).join(' ')}`)
      t.same(missingSources(text, context), [])
    })

    t.test('the context is what the build needs, and nothing git ignores', async (t) => {
      for (const needed of ['pnpm-lock.yaml', 'pnpm-workspace.yaml', 'package.json', 'apps/user-service/src/server.ts', 'packages/fastify-consul/package.json']) {
        t.ok(context.includes(needed), `sends ${needed}`)
      }
      // Docker does not read .gitignore: whatever this checkout has that git ignores (node_modules, dist,
      // .tap, caches, databases, a stale *.tsbuildinfo that would make tsc skip its output) must be
      // excluded by the Dockerfile's own ignore file, or `docker build` on a developer's machine sends it.
      const ignored = execFileSync('git', ['ls-files', '-z', '--others', '--ignored', '--exclude-standard', '--directory'], { cwd: projectRoot, encoding: 'utf8' })
        .split('\0').filter(Boolean).map((path) => path.replace(/\/$/, ''))
      t.ok(ignored.includes('node_modules'), 'this checkout has git-ignored files (it was installed)')
      const rules = ignoreRules(readFileSync(join(projectRoot, `${file}.dockerignore`), 'utf8'))
      t.same(ignored.filter((path) => !rules.ignores(path)), [], 'every one of them is docker-ignored')
    })

    t.test('dockerfile-utils finds nothing to report', async (t) => {
      t.same(validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`), [])
    })
  })
}

t.test('negative controls: a missing source is found, by line', async (t) => {
  const context = ['package.json', 'pnpm-lock.yaml', 'apps/user-service/src/app.ts', 'packages/x/package.json']
  const dockerfile = [
    'FROM node:22-bookworm-slim AS build',
    'COPY pnpm-lock.yaml package.json .npmrc ./',
    'COPY ["apps/user-service/src", "packages/*/package.json", "./"]',
    'COPY --from=build /out ./',
    'ADD https://example.com/x.tar.gz /tmp/',
    'COPY --chown=node apps/gateway ./gateway',
    'COPY . .',
    'ADD missing.tar.gz /x/'
  ].join('\n')
  t.same(contextSources(dockerfile).map((s) => s.source), ['pnpm-lock.yaml', 'package.json', '.npmrc', 'apps/user-service/src', 'packages/*/package.json', 'apps/gateway', '.', 'missing.tar.gz'],
    'sources in both forms; stages and URLs are not the context')
  t.same(missingSources(dockerfile, context), ['line 2: COPY .npmrc', 'line 6: COPY apps/gateway', 'line 8: ADD missing.tar.gz'])
  t.same(missingSources('FROM scratch\nCOPY . /app\n', []), ['line 2: COPY .'], 'an empty context has no `.`')
})

t.test('negative control: the ignore file removes what it names', async (t) => {
  const root = t.testdir({
    Dockerfile: 'FROM node:22-bookworm-slim\nCOPY secrets.env dist/ keep/ ./\n',
    'Dockerfile.dockerignore': 'secrets.env\n**/dist\n',
    '.dockerignore': '*\n',
    'secrets.env': 'X=1\n',
    dist: { 'a.js': '' },
    keep: { 'b.js': '' }
  })
  execFileSync('git', ['init', '-q'], { cwd: root })
  t.equal(dockerignoreFor(root, 'Dockerfile'), 'Dockerfile.dockerignore', 'the Dockerfile\'s own ignore file wins')
  const context = buildContext(root, 'Dockerfile')
  t.same(missingSources(readFileSync(join(root, 'Dockerfile'), 'utf8'), context), ['line 2: COPY secrets.env', 'line 2: COPY dist/'])
  t.same(buildContext(root, 'Other.Dockerfile'), [], 'else the context\'s .dockerignore (here: everything)')
})

t.test('negative control: the linter reports broken instructions', async (t) => {
  const messages = validate('FROM node:22\nCOPY onlyone\nRUNN echo\nEXPOSE abc\n').map((d) => d.message)
  t.equal(messages.length, 3, messages.join('; '))
})
