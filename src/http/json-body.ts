import type { Context } from 'hono';

import { HttpInputError } from './errors.js';

const MAX_DEPTH = 8;

/**
 * Reads a JSON object body. The size limit is enforced before this by the
 * body-limit middleware; here the type, syntax and nesting depth are.
 */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpInputError(415, 'unsupported_media_type', 'body must be application/json');
  }
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpInputError(400, 'invalid_json', 'body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpInputError(400, 'invalid_json', 'body must be a JSON object');
  }
  if (depthOf(value, 0) > MAX_DEPTH) {
    throw new HttpInputError(400, 'invalid_json', `body nests deeper than ${MAX_DEPTH} levels`);
  }
  return value as Record<string, unknown>;
}

function depthOf(value: unknown, depth: number): number {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return depth;
  let max = depth + 1;
  for (const child of Object.values(value)) max = Math.max(max, depthOf(child, depth + 1));
  return max;
}
