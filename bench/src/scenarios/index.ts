import type { Scenario } from '../scenario.js'
import { p1 } from './p1-health.js'
import { p5 } from './p5-rolling-restart.js'
import { p6 } from './p6-kill.js'
import { p8 } from './p8-registration.js'

export const scenarios: Scenario[] = [p1, p5, p6, p8]
