// @reg/app-kit: what the two sample apps share, so that neither carries a copy of the other's scaffolding.
// Private: the apps are examples of how to use the plugins, and this is how they are put together.
export { logClientAbort } from './client-abort.js'
export { LOG_LEVELS, readEnv, readServerConfig, type LogLevel, type ServerConfig, type ServerDefaults } from './environment.js'
export { appMetrics, metricsRoute, PROMETHEUS_CONTENT_TYPE, type AppMetrics } from './metrics.js'
export { serve, CONNECTION_TIMEOUT, KEEP_ALIVE_TIMEOUT, REQUEST_TIMEOUT, SHUTDOWN_TIMEOUT, type ServeOptions } from './serve.js'
