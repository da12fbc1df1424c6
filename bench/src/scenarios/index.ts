import type { Scenario } from '../scenario.js'
import { p1 } from './p1-health.js'
import { p8 } from './p8-registration.js'

export const scenarios: Scenario[] = [p1, p8]
