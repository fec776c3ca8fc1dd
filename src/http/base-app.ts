import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';

import type { Metrics } from '../metrics.js';
import { errorBody, errorResponse, statusOf } from './errors.js';

export type BaseAppOptions = {
  listener: 'public' | 'internal';
  metrics: Metrics;
  logger: Logger;
  bodyLimitBytes: number;
};

/**
 * A hono app with what both listeners share: the error boundary, JSON 404s,
 * the body size limit and request metrics. Logs carry the route pattern,
 * never the path, which can hold a token.
 */
export function createBaseApp(options: BaseAppOptions): Hono {
  const { listener, metrics, logger } = options;
  const app = new Hono();

  app.use(async (c, next) => {
    await next();
    const route = c.req.routePath === '/*' || c.req.routePath === '*' ? 'unmatched' : c.req.routePath;
    metrics.requests.inc({ listener, route, status: String(c.res.status) });
  });
  app.use(
    bodyLimit({
      maxSize: options.bodyLimitBytes,
      onError: (c) =>
        c.json(errorBody('payload_too_large', `body exceeds ${options.bodyLimitBytes} bytes`), 413),
    }),
  );

  app.notFound((c) => c.json(errorBody('not_found', 'no such route'), 404));
  app.onError((err, c) => {
    if (statusOf(err) === 500) logger.error({ err, route: c.req.routePath }, 'request failed');
    return errorResponse(c, err);
  });
  return app;
}
