import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulHttp } from '../consul/http.js'
import type { Logger } from '../util/logger.js'
import { leftHealthyView } from './healthy-view.js'
import type { Registrar } from './registrar.js'

export interface ShutdownSteps {
  http: ConsulHttp
  log: Logger
  registrar: Registrar
  /** Turns the app's own health to draining (fastify-health's drain(), when it is there). */
  drainHealth: () => void
  deregisterTimeout: number
  drainDelay: number
  /** Closes the app (fastify.close()): the last step. */
  close: () => Promise<unknown>
}

/**
 * The zero-downtime exit: stop advertising (drain health, deregister) → wait until Consul's healthy
 * view no longer lists us, plus `drainDelay` → close the app. Each step is logged with its duration.
 */
export async function shutdownSequence (s: ShutdownSteps): Promise<void> {
  const { http, log, registrar } = s
  const step = async (name: string, fn: () => Promise<unknown> | unknown): Promise<void> => {
    const started = performance.now()
    await fn()
    log.info({ step: name, durationMs: Math.round(performance.now() - started) }, `shutdown: ${name}`)
  }
  const reg = registrar.registration
  await step('stop advertising', async () => {
    s.drainHealth()
    await registrar.deregister()
  })
  // Nobody can be routing to an instance that was never registered: skip the waits, and say so.
  if (reg === undefined) {
    log.info('shutdown: nothing was registered; no healthy view to leave')
  } else if (registrar.state !== 'deregistered') {
    log.warn({ state: registrar.state }, 'shutdown: not deregistered; callers drop us when Consul\'s check fails')
  } else {
    const started = performance.now()
    const left = await leftHealthyView(http, reg.name, reg.id, s.deregisterTimeout)
    const durationMs = Math.round(performance.now() - started)
    if (left) log.info({ step: 'left the healthy view', durationMs }, 'shutdown: left the healthy view')
    else log.warn({ step: 'left the healthy view', durationMs }, 'shutdown: could not confirm we left the healthy view (agent unreachable or still listing us)')
    if (s.drainDelay > 0) await step('drain delay', () => sleep(s.drainDelay))
  }
  await step('close', s.close)
}
