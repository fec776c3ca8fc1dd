import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';

import type { Metrics, Tally } from '../metrics.js';
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
  const { logger } = options;
  const app = new Hono();

  app.use(front(options));
  app.notFound((c) => c.json(errorBody('not_found', 'no such route'), 404));
  app.onError((err, c) => {
    if (statusOf(err) === 500) logger.error({ err, route: c.req.routePath }, 'request failed');
    return errorResponse(c, err);
  });
  return app;
}

/**
 * What every request passes before its route: the body size limit, then,
 * once answered, the request counter. One plain function rather than two
 * async middlewares, since each layer of hono's chain is a promise more on
 * every request (bench/README.md, redeem-miss).
 *
 * hono's own bodyLimit first asks for `c.req.raw.body`, which makes
 * @hono/node-server build a whole web Request, stream and AbortSignal for
 * every request; that tripled the CPU time of a redeem. Node's HTTP parser
 * already holds a body to its declared Content-Length, so a declared length
 * is judged from the header, and a GET or HEAD without one has no body;
 * anything else (a chunked body, or a Request built without the header, as
 * in tests) goes through hono's counting reader.
 */
function front(options: BaseAppOptions): MiddlewareHandler {
  const { bodyLimitBytes: maxBytes } = options;
  const count = requestCounter(options);
  const tooLarge = (c: Context) =>
    c.json(errorBody('payload_too_large', `body exceeds ${maxBytes} bytes`), 413);
  const counting = bodyLimit({ maxSize: maxBytes, onError: tooLarge });

  return function front(c, next) {
    const counted = () => count(c);
    if (c.req.header('transfer-encoding') === undefined) {
      const declared = c.req.header('content-length');
      if (declared !== undefined && Number(declared) > maxBytes) {
        const refusal = tooLarge(c);
        count(c, refusal.status);
        return Promise.resolve(refusal);
      }
      if (declared !== undefined || c.req.method === 'GET' || c.req.method === 'HEAD') {
        return next().then(counted);
      }
    }
    // The counting reader answers a refusal itself, without next().
    return counting(c, next).then((answer) => {
      count(c, answer instanceof Response ? answer.status : undefined);
      return answer;
    });
  };
}

/**
 * Counts an answered request by listener, route pattern and status, in a
 * tally per route and status (see TalliedCounter).
 */
function requestCounter(options: BaseAppOptions): (c: Context, status?: number) => void {
  const { listener, metrics } = options;
  const tallies = new Map<string, Map<number, Tally>>();
  return (c, answered = c.res.status) => {
    const path = c.req.routePath;
    let byStatus = tallies.get(path);
    if (byStatus === undefined) {
      byStatus = new Map();
      tallies.set(path, byStatus);
    }
    let tally = byStatus.get(answered);
    if (tally === undefined) {
      const route = path === '/*' || path === '*' ? 'unmatched' : path;
      tally = metrics.requests.tally({ listener, route, status: String(answered) });
      byStatus.set(answered, tally);
    }
    tally.count++;
  };
}
