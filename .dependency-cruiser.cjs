// Import rules that `pnpm lint` enforces (with eslint). Type-only imports count: a cycle or a layer
// violation through `import type` is still one concept depending on another.
const CONSUL = '^packages/fastify-consul/src/'
const CORE = `${CONSUL}(consul|registration|discovery|config|leader|connect|util)/`

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No source file of any package or app may be part of an import cycle.',
      from: { path: '^(packages|apps|bench)/[^/]+/src/|^bench/src/' },
      to: { circular: true }
    },
    {
      name: 'core-without-fastify',
      severity: 'error',
      comment: 'Below the adapter (index.ts, options.ts) nothing imports fastify, not even for types: the cores are framework-agnostic.',
      from: { path: CORE },
      to: { path: '(^|/)node_modules/(fastify|fastify-plugin)/' }
    },
    {
      name: 'registration-not-discovery',
      severity: 'error',
      comment: 'registration/ and discovery/ are siblings; neither imports the other.',
      from: { path: `${CONSUL}registration/` },
      to: { path: `${CONSUL}discovery/` }
    },
    {
      name: 'discovery-not-registration',
      severity: 'error',
      from: { path: `${CONSUL}discovery/` },
      to: { path: `${CONSUL}registration/` }
    },
    {
      name: 'config-and-leader-stand-alone',
      severity: 'error',
      comment: 'config/ (KV configuration) and leader/ (sessions) are siblings of registration/ and discovery/: they import only consul/ and util/ (and errors.ts), and not each other.',
      from: { path: `${CONSUL}(config|leader)/` },
      to: { path: `${CONSUL}(registration|discovery|config|leader)/`, pathNot: `${CONSUL}$1/` }
    },
    {
      name: 'connect-stands-alone',
      comment: 'connect/ (Consul Connect: certificates, server TLS, authorization) imports only consul/ and util/ (and errors.ts); discovery/dispatch may import it to dial Connect-native instances.',
      severity: 'error',
      from: { path: `${CONSUL}connect/` },
      to: { path: `${CONSUL}(registration|discovery|config|leader)/` }
    },
    {
      name: 'only-the-adapter-and-dispatch-import-connect',
      severity: 'error',
      from: { path: `${CONSUL}(registration|config|leader|consul|util)/|${CONSUL}discovery/(?!dispatch/)` },
      to: { path: `${CONSUL}connect/` }
    },
    {
      name: 'siblings-do-not-import-config-or-leader',
      severity: 'error',
      from: { path: `${CONSUL}(registration|discovery)/` },
      to: { path: `${CONSUL}(config|leader)/` }
    },
    {
      name: 'layers-import-down',
      severity: 'error',
      comment: 'Layers import downwards only: index → options → {registration, discovery} → consul → {util, errors}; inside discovery/: {registry, options, watch-handle} → dispatch/ → lb/ → watch/.',
      from: { path: CORE },
      to: { path: `${CONSUL}(index|options)\\.ts$` }
    },
    {
      name: 'consul-layer-is-the-bottom-of-the-domain',
      severity: 'error',
      from: { path: `${CONSUL}consul/` },
      to: { path: `${CONSUL}(registration|discovery|config|leader|connect)/` }
    },
    {
      name: 'util-is-a-leaf',
      severity: 'error',
      comment: 'util/ holds primitives (backoff, token bucket, validation, the Logger type) and imports nothing of ours.',
      from: { path: `${CONSUL}util/` },
      to: { path: `${CONSUL}(?!util/)` }
    },
    {
      name: 'errors-is-a-leaf',
      severity: 'error',
      from: { path: '^packages/[^/]+/src/errors\\.ts$' },
      to: { path: '^packages/[^/]+/src/' }
    },
    {
      name: 'discovery-watch-is-the-bottom',
      severity: 'error',
      comment: 'discovery/ is split as go-kit splits sd and lb: watch/ (what Consul says is there) knows nothing of balancing or dispatching, and nothing of the discovery/ files above it.',
      from: { path: `${CONSUL}discovery/watch/` },
      to: { path: `${CONSUL}discovery/(?!watch/)` }
    },
    {
      name: 'discovery-lb-below-dispatch',
      severity: 'error',
      comment: 'lb/ (the balancers and upstream load) reads watch/ only; it never reaches up into dispatch/ or the discovery/ files above it.',
      from: { path: `${CONSUL}discovery/lb/` },
      to: { path: `${CONSUL}discovery/(?!watch/|lb/)` }
    },
    {
      name: 'discovery-dispatch-below-the-handles',
      severity: 'error',
      comment: 'dispatch/ (pools, outlier detection, retries) composes lb/ and watch/; the registry, options and watch handle above it are not its business.',
      from: { path: `${CONSUL}discovery/dispatch/` },
      to: { path: `${CONSUL}discovery/(?!watch/|lb/|dispatch/)` }
    },
    {
      name: 'options-not-adapter',
      severity: 'error',
      from: { path: `${CONSUL}options\\.ts$` },
      to: { path: `${CONSUL}index\\.ts$` }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|coverage|\\.tap|node_modules/\\.pnpm/[^/]+/node_modules/[^/]+/node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts']
    }
  }
}
