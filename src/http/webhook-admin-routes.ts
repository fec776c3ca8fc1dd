import type { Context, Hono } from 'hono';

import { InvalidInputError, NotFoundError } from '../errors.js';
import {
  type DeliveryDetail,
  type DeliveryStatus,
  type DeliverySummary,
  isDeliveryId,
  type ListQuery,
  type Outbox,
} from '../webhooks/outbox.js';
import type { WebhookDispatcher } from '../webhooks/webhook-dispatcher.js';

const LIST_PARAMETERS = new Set(['merchant_id', 'invoice_id', 'status', 'limit', 'cursor']);
const STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];
const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;

/**
 * Webhook delivery administration for the internal listener: what was
 * sent, how each attempt went, and sending an event again. Bodies are not
 * shown; they can carry the merchant's invoice metadata.
 */
export function registerWebhookAdminRoutes(
  app: Hono,
  outbox: Outbox,
  dispatcher: WebhookDispatcher,
): void {
  app.get('/admin/v1/webhooks/deliveries', (c) => {
    const page = outbox.list(parseListQuery(c));
    return c.json({ deliveries: page.deliveries.map(summaryJson), next_cursor: page.nextCursor });
  });

  app.get('/admin/v1/webhooks/deliveries/:id', (c) => {
    const id = parseDeliveryId(c.req.param('id'));
    const delivery = outbox.get(id);
    if (!delivery) throw new NotFoundError(`no webhook delivery ${id}`, 'delivery_not_found');
    return c.json(detailJson(delivery));
  });

  app.post('/admin/v1/webhooks/deliveries/:id/redeliver', (c) => {
    const id = parseDeliveryId(c.req.param('id'));
    const newId = outbox.redeliver(id, Math.floor(Date.now() / 1000));
    dispatcher.kick();
    const created = outbox.get(newId)!;
    c.header('Location', `/admin/v1/webhooks/deliveries/${newId}`);
    return c.json(summaryJson(created), 201);
  });
}

function parseListQuery(c: Context): ListQuery {
  const query = c.req.query();
  const unknown = Object.keys(query).find((key) => !LIST_PARAMETERS.has(key));
  if (unknown !== undefined) {
    throw new InvalidInputError(
      `unknown query parameter ${unknown}; accepted: ${[...LIST_PARAMETERS].join(', ')}`,
    );
  }
  return {
    merchantId: optionalId('merchant_id', query.merchant_id),
    invoiceId: optionalId('invoice_id', query.invoice_id),
    status: parseStatus(query.status),
    limit: parseLimit(query.limit),
    cursor: query.cursor,
  };
}

function optionalId(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!ID_PATTERN.test(value)) {
    throw new InvalidInputError(`${name} must be 1 to 100 letters, digits, '_' or '-'`);
  }
  return value;
}

function parseStatus(value: string | undefined): DeliveryStatus | undefined {
  if (value === undefined) return undefined;
  if (!(STATUSES as readonly string[]).includes(value)) {
    throw new InvalidInputError(`status must be one of ${STATUSES.join(', ')}`);
  }
  return value as DeliveryStatus;
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const limit = /^[0-9]{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) {
    throw new InvalidInputError(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  }
  return limit;
}

function parseDeliveryId(value: string): string {
  if (!isDeliveryId(value)) {
    throw new InvalidInputError('delivery id must look like wd_ and 22 base64url characters');
  }
  return value;
}

function summaryJson(delivery: DeliverySummary) {
  return {
    id: delivery.id,
    merchant_id: delivery.merchantId,
    invoice_id: delivery.invoiceId,
    type: delivery.type,
    status: delivery.status,
    is_redelivery: delivery.isRedelivery,
    original_delivery_id: delivery.originalDeliveryId,
    created_at: delivery.createdAt,
    next_attempt_at_ms: delivery.nextAttemptAtMs,
    delivered_at: delivery.deliveredAt,
    failed_at: delivery.failedAt,
    attempt_count: delivery.attemptCount,
    last_status: delivery.lastStatus,
    last_error: delivery.lastError,
  };
}

function detailJson(delivery: DeliveryDetail) {
  return {
    ...summaryJson(delivery),
    attempts: delivery.attempts.map((attempt) => ({
      at: attempt.at,
      status: attempt.status,
      error: attempt.error,
      duration_ms: attempt.durationMs,
    })),
  };
}
