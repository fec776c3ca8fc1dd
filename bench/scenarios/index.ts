import type { ScenarioName } from '../options.js';
import type { Scenario } from '../scenario.js';
import { ingest } from './ingest.js';
import { invoiceCreate } from './invoice-create.js';
import { mixedFlood } from './mixed-flood.js';
import { onion } from './onion.js';
import { redeemClaim } from './redeem-claim.js';
import { redeemMiss } from './redeem-miss.js';
import { redeemRepeat } from './redeem-repeat.js';
import { scale } from './scale.js';
import { sprayMemory } from './spray-memory.js';
import { tokenStatus } from './token-status.js';

export const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  'redeem-miss': redeemMiss,
  'redeem-repeat': redeemRepeat,
  'redeem-claim': redeemClaim,
  'token-status': tokenStatus,
  'invoice-create': invoiceCreate,
  'mixed-flood': mixedFlood,
  ingest,
  scale,
  'spray-memory': sprayMemory,
  onion,
};
