import type { Context, Hono } from 'hono';

import { StrongholdError, UnavailableError } from '../errors.js';
import type { TicketService } from '../tickets/ticket-service.js';
import { type BaseAppOptions, createBaseApp } from './base-app.js';
import { errorResponse, statusOf } from './errors.js';
import { readJsonObject } from './json-body.js';
import { tokenStatusJson } from './token-json.js';

export type ServiceInfo = {
  network: string;
  primaryAddress: string | undefined;
  minPaymentAtomic: bigint;
  minConfirmations: number;
};

export type PublicAppOptions = Omit<BaseAppOptions, 'listener'> & {
  tickets: TicketService;
  info(): ServiceInfo;
};

/** Customer and merchant routes: the only ones the public listener serves. */
export function createPublicApp(options: PublicAppOptions): Hono {
  const app = createBaseApp({ ...options, listener: 'public' });
  const { tickets } = options;

  app.get('/api/v1/info', (c) => {
    const info = options.info();
    if (!info.primaryAddress) {
      throw new UnavailableError('the wallet address is not known yet; try again shortly');
    }
    return c.json({
      network: info.network,
      primary_address: info.primaryAddress,
      min_payment_atomic: info.minPaymentAtomic.toString(),
      min_confirmations: info.minConfirmations,
      payment_id_bytes: 8,
    });
  });

  // The two routes a client can flood answer their refusals here rather than
  // through hono's error boundary: a rejected handler costs a few promise
  // hops more than an answer (bench/README.md, redeem-miss).
  app.post('/api/v1/redeem', async (c) => {
    let result;
    try {
      result = await tickets.redeem((await readJsonObject(c)).pid);
    } catch (err) {
      return answerRefusal(c, err);
    }
    if (result.status === 'pending') {
      return c.json(
        { status: 'pending', confirmations: result.confirmations, required: result.required },
        202,
      );
    }
    return c.json({
      status: result.status,
      service_token: result.token,
      balance_atomic: result.balance.toString(),
    });
  });

  app.get('/api/v1/token/:token', (c) => {
    let status;
    try {
      status = tickets.status(c.req.param('token'));
    } catch (err) {
      return answerRefusal(c, err);
    }
    return c.json(tokenStatusJson(status));
  });

  return app;
}

/** A refusal the route knows (a StrongholdError) as its JSON answer; anything else goes on up. */
function answerRefusal(c: Context, err: unknown): Response {
  if (err instanceof StrongholdError && statusOf(err) !== 500) return errorResponse(c, err);
  throw err;
}
