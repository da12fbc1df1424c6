export { ensureConsul, debianMirror, projectRoot, ConsulNotFoundError, type EnsureConsulOptions } from './ensure-consul.js'
export { startConsul, type ConsulAgent, type StartConsulOptions, type TestLike } from './consul-agent.js'
export { startConsulCluster, type ConsulCluster, type StartClusterOptions } from './consul-cluster.js'
export { freePorts } from './free-ports.js'
