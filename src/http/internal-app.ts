import type { Hono } from 'hono';

import { InvalidInputError } from '../errors.js';
import type { TicketService } from '../tickets/ticket-service.js';
import { type BaseAppOptions, createBaseApp } from './base-app.js';
import { readJsonObject } from './json-body.js';
import { tokenStatusJson } from './token-json.js';

export type Readiness = { ready: boolean; checks: Record<string, boolean> };

export type InternalAppOptions = Omit<BaseAppOptions, 'listener'> & {
  tickets: TicketService;
  readiness(): Readiness;
};

/** Metrics, health and administration: served only on the internal listener. */
export function createInternalApp(options: InternalAppOptions): Hono {
  const app = createBaseApp({ ...options, listener: 'internal' });
  const { tickets, metrics } = options;

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', (c) => {
    const readiness = options.readiness();
    return c.json(
      { status: readiness.ready ? 'ready' : 'not_ready', checks: readiness.checks },
      readiness.ready ? 200 : 503,
    );
  });

  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType });
  });

  app.post('/api/v1/token/:token/revoke', async (c) => {
    const body = await readJsonObject(c);
    const reason = body.reason ?? '';
    const score = body.abuse_score ?? 0;
    if (typeof reason !== 'string' || reason.length > 500) {
      throw new InvalidInputError('reason must be a string of at most 500 characters');
    }
    if (!Number.isSafeInteger(score) || (score as number) < 0 || (score as number) > 1_000_000) {
      throw new InvalidInputError('abuse_score must be an integer from 0 to 1000000');
    }
    const status = tickets.revoke(c.req.param('token'), reason, score as number);
    return c.json(tokenStatusJson(status));
  });

  return app;
}
