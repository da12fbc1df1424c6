import type { Scenario } from '../scenario.js'
import { p1 } from './p1-health.js'
import { p2 } from './p2-pick.js'
import { p3 } from './p3-proxy.js'
import { p4 } from './p4-propagation.js'
import { p5 } from './p5-rolling-restart.js'
import { p6 } from './p6-kill.js'
import { p7 } from './p7-rss.js'
import { p8 } from './p8-registration.js'
import { p9 } from './p9-self-heal.js'
import { p13 } from './p13-cached-reads.js'
import { p14 } from './p14-metrics.js'

export const scenarios: Scenario[] = [p1, p2, p3, p4, p5, p6, p7, p8, p9, p13, p14]
