import { WalletRpcError } from '../errors.js';
import type { WorkerPool } from '../work/worker-pool.js';
import type { TransfersParser } from './monitor.js';
import { fromColumns } from './transfer-columns.js';

/**
 * Parses the monitor's wallet answers on the worker pool, so that reading a
 * backlog range overlaps with storing the one before it on the main thread.
 */
export function pooledParser(pool: WorkerPool, pidTagKey: Buffer): TransfersParser {
  return async (answer, maxHeight) => {
    const outcome = await pool.parseTransfers({ answer, maxHeight, pidTagKey });
    if ('error' in outcome) throw new WalletRpcError(outcome.error.code, outcome.error.message);
    return fromColumns(outcome.columns);
  };
}
