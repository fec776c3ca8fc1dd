import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

import {
  AuthError,
  ConflictError,
  InvalidInputError,
  NotFoundError,
  StrongholdError,
  UnavailableError,
} from '../errors.js';

/** An error raised at the HTTP layer itself (size limits, bad JSON). */
export class HttpInputError extends StrongholdError {
  readonly status: ContentfulStatusCode;

  constructor(status: ContentfulStatusCode, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

/** Chooses the HTTP status for a domain error: the only place that does. */
export function statusOf(err: unknown): ContentfulStatusCode {
  if (err instanceof HttpInputError) return err.status;
  if (err instanceof InvalidInputError) return 400;
  if (err instanceof AuthError) return 401;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof UnavailableError) return 503;
  return 500;
}

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Turns any thrown error into the JSON error response; never leaks internals on a 500. */
export function errorResponse(c: Context, err: unknown): Response {
  const status = statusOf(err);
  if (status === 500 || !(err instanceof StrongholdError)) {
    return c.json(errorBody('internal', 'internal error'), 500);
  }
  return c.json(errorBody(err.code, err.message), status);
}
