// @reg/app-kit: what the two sample apps share, so that neither carries a copy of the other's scaffolding.
// Private: the apps are examples of how to use the plugins, and this is how they are put together.
export { adminHealthRoute } from './admin-health.js'
export { METRICS_PORT_META, type AdminListener } from './admin-listener.js'
export { logClientAbort } from './client-abort.js'
export { ADMIN_HOST, ADMIN_PORT_OFFSET, LOG_LEVELS, readEnv, readFlag, readServerConfig, type LogLevel, type ServerConfig, type ServerDefaults } from './environment.js'
export { appMetrics, metricsRoute, PROMETHEUS_CONTENT_TYPE, type AppMetrics } from './metrics.js'
export { serve, CONNECTION_TIMEOUT, KEEP_ALIVE_TIMEOUT, REQUEST_TIMEOUT, SHUTDOWN_TIMEOUT, type Prepared, type ServeOptions } from './serve.js'
