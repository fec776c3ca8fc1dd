import type { Hono } from 'hono';

import type { MerchantStore } from '../merchants/merchant-store.js';
import { readJsonObject } from './json-body.js';

const now = () => Math.floor(Date.now() / 1000);

/** Operator routes for merchants and their keys, on the internal listener only. */
export function registerMerchantAdminRoutes(app: Hono, merchants: MerchantStore): void {
  app.post('/admin/v1/merchants', async (c) => {
    const body = await readJsonObject(c);
    return c.json(merchants.add(body, now()), 201);
  });

  app.get('/admin/v1/merchants', (c) => c.json({ merchants: merchants.list() }));

  app.get('/admin/v1/merchants/:id', (c) => c.json(merchants.get(c.req.param('id'))));

  app.post('/admin/v1/merchants/:id/disable', (c) => c.json(merchants.disable(c.req.param('id'), now())));

  app.post('/admin/v1/merchants/:id/keys', async (c) => {
    const body = await readJsonObject(c);
    return c.json(merchants.addKey(c.req.param('id'), body.public_key, now()), 201);
  });

  app.post('/admin/v1/merchants/:id/keys/:keyId/revoke', (c) =>
    c.json(merchants.revokeKey(c.req.param('id'), c.req.param('keyId'), now())),
  );
}
