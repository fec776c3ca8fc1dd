import { type Context, Hono, type MiddlewareHandler } from 'hono';
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
  app.use(boundedBody(options.bodyLimitBytes));

  app.notFound((c) => c.json(errorBody('not_found', 'no such route'), 404));
  app.onError((err, c) => {
    if (statusOf(err) === 500) logger.error({ err, route: c.req.routePath }, 'request failed');
    return errorResponse(c, err);
  });
  return app;
}

/**
 * The body size limit. hono's bodyLimit first asks for `c.req.raw.body`,
 * which makes @hono/node-server build a whole web Request, stream and
 * AbortSignal for every request, and that tripled the CPU time of a
 * redeem (bench/README.md, redeem-miss). Node's HTTP parser already holds a
 * body to its declared Content-Length, so a declared length is judged from
 * the header, and a GET or HEAD without one has no body; anything else (a
 * chunked body, or a Request built without the header, as in tests) goes
 * through hono's counting reader.
 */
function boundedBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = (c: Context) =>
    c.json(errorBody('payload_too_large', `body exceeds ${maxBytes} bytes`), 413);
  const counting = bodyLimit({ maxSize: maxBytes, onError: tooLarge });

  return async function boundedBody(c, next) {
    if (c.req.header('transfer-encoding') === undefined) {
      const declared = c.req.header('content-length');
      if (declared !== undefined) return Number(declared) > maxBytes ? tooLarge(c) : next();
      if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    }
    return counting(c, next);
  };
}
