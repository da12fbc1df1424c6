import { serve } from '@reg/app-kit'
import { connectNative } from '@reg/fastify-consul'
import userService from './app.js'
import { loadConfig } from './config.js'

// The process around the app: @reg/app-kit's serve() reads the environment, builds the logger and server
// timeouts, listens and shuts down on a signal; this says which plugin, with which options, and how it leaves.

await serve({
  name: 'user-service',
  loadConfig,
  // REG_CONNECT=true: the leaf certificate and the CA roots first, because the server is built with them
  // (Fastify creates it before any plugin runs). No certificate within 30 s is a failed start.
  prepare: async (config, log) => config.connect ? await connectNative({ service: config.serviceName, consul: config.consul, log }) : undefined,
  // /metrics and the detailed /health go on the admin listener serve() bound, in plain HTTP.
  register (app, config, admin, connect) {
    app.register(userService, {
      admin,
      connect,
      dbPath: config.usersDb,
      serviceName: config.serviceName,
      serviceId: config.serviceId,
      consul: config.consul,
      // @reg/fastify-consul would read REG_ZONE itself; read here, it is in the one place that says what
      // the process takes from its environment, and an embedding app passes `zone` the same way.
      zone: config.zone
    })
  },
  // @reg/fastify-consul's shutdown() stops advertising (health drain + deregister), waits until Consul's
  // healthy view has dropped us (plus its drainDelay), then runs close(), all before Fastify starts
  // answering 503 on kept-alive sockets.
  shutdown: (app) => app.consul.shutdown()
})
