import { hostname as osHostname, networkInterfaces } from 'node:os'
import { urlHost } from '../consul/address.js'
import { goDuration } from '../consul/duration.js'
import { REGISTRATION_DEFAULTS, type CheckConfig, type ProbeConfig, type ServiceOptions } from './options.js'

export type CheckStatus = 'passing' | 'warning' | 'critical'

/** The registration as sent to Consul, in the camelCase users configure it with. */
export interface ServiceRegistration {
  id: string
  name: string
  address: string
  port: number
  tags: readonly string[]
  meta: Readonly<Record<string, string>>
  weights: { passing: number, warning: number }
  check: RegisteredCheck | undefined
}

export type RegisteredCheck =
  | { id: string, type: 'http', url: string, interval: string, timeout: string, deregisterCriticalServiceAfter: string }
  | { id: string, type: 'tcp', tcp: string, interval: string, timeout: string, deregisterCriticalServiceAfter: string }
  | { id: string, type: 'grpc', grpc: string, interval: string, timeout: string, deregisterCriticalServiceAfter: string }
  | { id: string, type: 'ttl', ttl: string, deregisterCriticalServiceAfter: string }

export type AddressRule = 'service.address' | 'bound address' | 'host interface' | 'loopback fallback'

export interface ResolvedAddress {
  address: string
  rule: AddressRule
}

/**
 * Where callers should reach us, in order: what the user said → the concrete IP we are bound to →
 * the host's first external IPv4. A wildcard bind (0.0.0.0, ::) says nothing about reachability.
 */
export function resolveAddress (explicit: string | undefined, bound: string | undefined, interfaces = networkInterfaces()): ResolvedAddress {
  if (explicit !== undefined) return { address: explicit, rule: 'service.address' }
  if (bound !== undefined && bound !== '0.0.0.0' && bound !== '::' && bound !== '') {
    return { address: bound, rule: 'bound address' }
  }
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      if (!info.internal && info.family === 'IPv4') return { address: info.address, rule: 'host interface' }
    }
  }
  return { address: '127.0.0.1', rule: 'loopback fallback' }
}

/** `${name}-${hostname}-${port}`: stable across restarts on the same host, so a restart replaces itself. */
export function defaultServiceId (name: string, port: number, hostname = osHostname()): string {
  return `${name}-${hostname}-${port}`.replace(/[^A-Za-z0-9_.-]/g, '-')
}

export interface DefinitionInput {
  service: ServiceOptions
  check: CheckConfig
  address: string
  port: number
  /** The path Consul's HTTP check probes: the health plugin's, or `/health`. */
  healthPath: string
  /** Sent as the check's initial Status, so we are discoverable from the first millisecond. */
  initialStatus: CheckStatus
  /**
   * This process's own suffix for the CheckID. Consul keeps a check's status when a check with the same
   * ID is registered again, even with a passing Status and ?replace-existing-checks: a replica restarted
   * under the same service ID would stay critical until the next probe. A new CheckID starts with the
   * Status we send, and ?replace-existing-checks removes the old one. Self-heal keeps the boot's ID.
   */
  bootId: string
  /**
   * The registration's `Connect` block, built by connect/ (registration/ does not know Connect):
   * `{ Native: true }` for a Connect-native service, `{ SidecarService: … }` for one behind a sidecar.
   */
  connect?: Record<string, unknown> | undefined
}

/** The PUT /v1/agent/service/register body. Only fields Consul 1.8 knows: it rejects unknown ones. */
export interface AgentServiceRegister {
  ID: string
  Name: string
  Address: string
  Port: number
  Tags: string[]
  Meta: Record<string, string>
  Connect?: Record<string, unknown>
  Weights?: { Passing: number, Warning: number }
  EnableTagOverride?: boolean
  Check?: Record<string, string | number | boolean | Record<string, string[]>>
}

export function buildDefinition (input: DefinitionInput): { body: AgentServiceRegister, registration: ServiceRegistration } {
  const { service, check, address, port } = input
  const id = service.id ?? defaultServiceId(service.name, port)
  const checkId = `service:${id}:${input.bootId}`
  const body: AgentServiceRegister = {
    ID: id,
    Name: service.name,
    Address: address,
    Port: port,
    Tags: [...(service.tags ?? [])],
    Meta: { ...(service.meta ?? {}), ...(service.zone !== undefined && { zone: service.zone }) }
  }
  const weights = service.weights ?? REGISTRATION_DEFAULTS.weights
  body.Weights = { Passing: weights.passing, Warning: weights.warning }
  if (service.enableTagOverride !== undefined) body.EnableTagOverride = service.enableTagOverride
  if (input.connect !== undefined) body.Connect = input.connect

  let registered: RegisteredCheck | undefined
  if (check.type !== 'none') {
    const deregisterAfter = goDuration(check.deregisterCriticalServiceAfter)
    const common = {
      CheckID: checkId,
      Name: `${service.name} ${check.type} check`,
      Status: input.initialStatus,
      DeregisterCriticalServiceAfter: deregisterAfter
    }
    if (check.type === 'ttl') {
      body.Check = { ...common, TTL: goDuration(check.ttl) }
      registered = { id: checkId, type: 'ttl', ttl: goDuration(check.ttl), deregisterCriticalServiceAfter: deregisterAfter }
    } else {
      const timing = { interval: goDuration(check.interval), timeout: goDuration(check.timeout), deregisterCriticalServiceAfter: deregisterAfter }
      const probe = { ...common, Interval: timing.interval, Timeout: timing.timeout, ...thresholds(check) }
      if (check.type === 'http') {
        const path = check.path ?? input.healthPath
        const url = `http://${urlHost(address)}:${port}${path}`
        body.Check = { ...probe, HTTP: url }
        if (check.method !== undefined) body.Check.Method = check.method
        if (check.header !== undefined) body.Check.Header = check.header
        if (check.tlsSkipVerify !== undefined) body.Check.TLSSkipVerify = check.tlsSkipVerify
        registered = { id: checkId, type: 'http', url, ...timing }
      } else if (check.type === 'tcp') {
        const tcp = `${urlHost(address)}:${port}`
        body.Check = { ...probe, TCP: tcp }
        registered = { id: checkId, type: 'tcp', tcp, ...timing }
      } else {
        const grpc = `${urlHost(address)}:${check.port ?? port}${check.grpcService === undefined ? '' : `/${check.grpcService}`}`
        body.Check = { ...probe, GRPC: grpc }
        if (check.grpcUseTls !== undefined) body.Check.GRPCUseTLS = check.grpcUseTls
        if (check.tlsSkipVerify !== undefined) body.Check.TLSSkipVerify = check.tlsSkipVerify
        registered = { id: checkId, type: 'grpc', grpc, ...timing }
      }
    }
  }

  return {
    body,
    registration: {
      id,
      name: service.name,
      address,
      port,
      tags: Object.freeze([...body.Tags]),
      meta: Object.freeze({ ...body.Meta }),
      weights: { ...weights },
      check: registered
    }
  }
}

/** Sent only when set: Consul 1.8 knows them, and an unset one keeps Consul's default (0, no damping). */
function thresholds (check: ProbeConfig): Record<string, number> {
  const out: Record<string, number> = {}
  if (check.successBeforePassing !== undefined) out.SuccessBeforePassing = check.successBeforePassing
  if (check.failuresBeforeCritical !== undefined) out.FailuresBeforeCritical = check.failuresBeforeCritical
  return out
}
