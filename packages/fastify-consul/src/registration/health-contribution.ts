import type { CheckStatus } from './definition.js'

/** What the registrar needs of @reg/fastify-health; structural, so neither package imports the other. */
export interface HealthSource {
  status (): { status: CheckStatus, checks: Record<string, { status: CheckStatus, output?: string }>, pressure?: readonly unknown[] }
  onChange (listener: (status: { status: CheckStatus }) => void): () => void
}

// What this plugin adds to @reg/fastify-health's readiness: a non-critical check that warns while the
// instance is not registered after a failed try. An operator reading /health (or the logs, where the
// health plugin says it once per change) learns why callers cannot find this replica.

/** The name of the check this plugin adds when @reg/fastify-health is registered before it. */
export const REGISTRATION_CHECK = 'consul registration'

/** How often the check re-reads the registrar's state: a property read, so a short interval costs nothing. */
export const REGISTRATION_CHECK_INTERVAL = 1000

interface RegistrationView {
  readonly lastError: Error | undefined
}

/**
 * Warning "not registered: <Consul's reason>" while a failed registration is being retried; passing
 * before the first try and once registered. Never critical: not being in Consul is no reason to stop
 * serving the callers that already reach us.
 */
export function registrationCheck (registrar: RegistrationView): () => { status: CheckStatus, output?: string } {
  return () => {
    const err = registrar.lastError
    return err === undefined ? { status: 'passing' } : { status: 'warning', output: `not registered: ${err.message}` }
  }
}

interface HealthView {
  status: CheckStatus
  checks: Readonly<Record<string, { status: CheckStatus, starting?: true }>>
  pressure?: readonly unknown[]
}

/**
 * The status to send to Consul. Our own "not registered" warning describes Consul, not this instance:
 * a registration sent while it still shows must not start out at the warning weight.
 */
export function advertisedStatus (health: HealthView): CheckStatus {
  if (health.status !== 'warning' || health.checks[REGISTRATION_CHECK]?.status !== 'warning') return health.status
  if ((health.pressure?.length ?? 0) > 0) return 'warning'
  // A check within its start period (`grace`) is shown but does not count, here as in the aggregate.
  const others = Object.entries(health.checks).filter(([name, c]) => name !== REGISTRATION_CHECK && c.starting !== true)
  return others.every(([, c]) => c.status === 'passing') ? 'passing' : 'warning'
}
