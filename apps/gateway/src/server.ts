import { serve } from '@reg/app-kit'
import { connectNative } from '@reg/fastify-consul'
import gateway from './app.js'
import { gatewayOptions, loadConfig } from './config.js'

// The process around the app: @reg/app-kit's serve() reads the environment, builds the logger and server
// timeouts, listens and shuts down on a signal; this says which plugin, with which options, and how it leaves.

await serve({
  name: 'gateway',
  loadConfig,
  // REG_CONNECT=true: the gateway's leaf certificate and the CA roots before the app is built, to call
  // Connect-native upstreams with. `inbound: false`: the public port stays plain HTTP (browsers hold no
  // Connect certificate), so the handle carries no `https`. No certificate within 30 s is a failed start.
  prepare: async (config, log) => config.connect ? await connectNative({ service: 'gateway', consul: config.consul, log, inbound: false }) : undefined,
  // /metrics, the detailed /health and the live view go on the admin listener serve() bound.
  register (app, config, admin, connect) {
    app.register(gateway, gatewayOptions(config, admin, connect))
  },
  started (app, config) {
    app.log.info({ upstream: config.upstream, failover: config.failover, zone: config.zone, connect: config.connect }, `proxying /users to healthy instances of ${config.upstream}`)
    if (config.dashboard) app.log.info(`live view of ${config.upstream} at /_gateway/ on the admin listener`)
  },
  // @reg/fastify-consul's shutdown() stops advertising (health drain + deregister), waits until Consul's
  // healthy view has dropped us (plus its drainDelay), then runs close(), which lets proxied requests in
  // flight finish before the upstream pools and the watch close.
  shutdown: (app) => app.consul.shutdown()
})
