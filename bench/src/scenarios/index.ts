import type { Scenario } from '../scenario.js'
import { p8 } from './p8-registration.js'

export const scenarios: Scenario[] = [p8]
