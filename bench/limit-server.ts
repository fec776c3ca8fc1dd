import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * The physical limit an HTTP scenario is compared with: one bare hono route
 * on @hono/node-server, in its own process, that reads the request body as
 * the service does and answers the same status and the same JSON the
 * service answered. argv[2] holds the route as JSON; the port is printed on
 * stdout as `{"port"}`.
 */

export type LimitRoute = {
  method: 'GET' | 'POST';
  /** A hono path pattern, e.g. `/api/v1/token/:token`. */
  path: string;
  status: number;
  body: unknown;
};

const route = JSON.parse(process.argv[2] ?? '{}') as LimitRoute;
const status = route.status as ContentfulStatusCode;
const app = new Hono();

if (route.method === 'POST') {
  app.post(route.path, async (c) => {
    await c.req.json();
    return c.json(route.body, status);
  });
} else {
  app.get(route.path, (c) => c.json(route.body, status));
}

serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`${JSON.stringify({ port: info.port })}\n`);
});
process.once('SIGTERM', () => process.exit(0));
