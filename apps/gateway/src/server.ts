import { serve } from '@reg/app-kit'
import gateway from './app.js'
import { gatewayOptions, loadConfig } from './config.js'

// The process around the app: @reg/app-kit's serve() reads the environment, builds the logger and server
// timeouts, listens and shuts down on a signal; this says which plugin, with which options, and how it leaves.

await serve({
  name: 'gateway',
  loadConfig,
  // /metrics, the detailed /health and the live view go on the admin listener serve() bound.
  register (app, config, admin) {
    app.register(gateway, gatewayOptions(config, admin))
  },
  started (app, config) {
    app.log.info({ upstream: config.upstream, failover: config.failover, zone: config.zone }, `proxying /users to healthy instances of ${config.upstream}`)
    if (config.dashboard) app.log.info(`live view of ${config.upstream} at /_gateway/ on the admin listener`)
  },
  // @reg/fastify-consul's shutdown() stops advertising (health drain + deregister), waits until Consul's
  // healthy view has dropped us (plus its drainDelay), then runs close(), which lets proxied requests in
  // flight finish before the upstream pools and the watch close.
  shutdown: (app) => app.consul.shutdown()
})
