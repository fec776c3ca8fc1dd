import pino from 'pino';

import { type ConfigInput, loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/logger.js';
import { Service } from '../src/service.js';

/**
 * The service under test, in a process of its own so that its RSS can be
 * read and the load generator never shares its thread. Takes the config
 * overrides as JSON in argv[2], prints `{"public","internal","startedAt",
 * "readyAt"}` on stdout once both listeners are open, and closes gracefully
 * on SIGTERM (so that `--cpu-prof` can write its profile). Logs go to stderr.
 */

export type ServeMessage = {
  public: number;
  internal: number;
  /** Epoch milliseconds just before Service.start. */
  startedAt: number;
  /** Epoch milliseconds once Service.start returned. */
  readyAt: number;
};

const overrides = JSON.parse(process.argv[2] ?? '{}') as ConfigInput;
const config = loadConfig({ env: {}, overrides });
const logger = createLogger(config.log_level, pino.destination(2));

const startedAt = Date.now();
const service = await Service.start(config, logger);
const message: ServeMessage = {
  public: service.publicListener.port!,
  internal: service.internalListener.port!,
  startedAt,
  readyAt: Date.now(),
};
process.stdout.write(`${JSON.stringify(message)}\n`);

process.once('SIGTERM', () => {
  service.close(1_000).then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'bench service did not close cleanly');
      process.exit(1);
    },
  );
});
