import type { LeaderHandle } from '@reg/fastify-consul'
import type { FastifyBaseLogger } from 'fastify'
import type { UsersDatabase } from './db.js'

// The periodic job that must run once per database, not once per replica: the replicas share one SQLite
// file, so only the leader (a Consul session lock on service/<name>/leader) checkpoints the WAL back into
// the database and refreshes the planner's statistics. It starts when this replica is elected and stops
// the moment it is not the leader any more.

export interface MaintenanceJob {
  /** Runs so far on this replica. */
  readonly runs: number
  stop (): void
}

export function maintenanceJob (leader: LeaderHandle, db: UsersDatabase, intervalMs: number, log: FastifyBaseLogger): MaintenanceJob {
  let runs = 0
  // One timer at a time, armed after each run ends: runs cannot pile up, and it never holds the process open.
  let timer: NodeJS.Timeout | undefined

  function run (): void {
    // Leadership may have been lost between the timer and now: the check is what makes the job leader-only.
    if (!leader.isLeader) return
    try {
      db.pragma('wal_checkpoint(TRUNCATE)')
      db.pragma('optimize')
      runs++
      log.debug({ runs }, 'maintenance job ran')
    } catch (err) {
      log.warn({ err }, 'maintenance job failed')
    }
    timer = setTimeout(run, intervalMs).unref()
  }

  const onElected = (): void => {
    log.info({ key: leader.key, intervalMs }, 'leader: maintenance job started')
    run()
  }
  const onLost = (reason: string): void => {
    clearTimeout(timer)
    timer = undefined
    log.info({ key: leader.key, reason }, 'not the leader: maintenance job stopped')
  }
  leader.on('elected', onElected)
  leader.on('lost', onLost)
  return {
    get runs () { return runs },
    stop () {
      clearTimeout(timer)
      leader.off('elected', onElected)
      leader.off('lost', onLost)
    }
  }
}
