/**
 * The part of autocannon's programmatic API the bench uses. autocannon ships
 * no types and the project takes no @types package for a dev tool, so this
 * declares only what bench/load-child.ts calls.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    type RawRequest = {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
    };

    type Request = RawRequest & {
      /** Builds each request; returning a falsy value restarts the sequence. */
      setupRequest?: (request: RawRequest, context: object) => RawRequest | undefined;
    };

    type Options = {
      url: string;
      connections?: number;
      duration?: number;
      amount?: number;
      overallRate?: number;
      connectionRate?: number;
      timeout?: number;
      sampleInt?: number;
      method?: string;
      headers?: Record<string, string>;
      requests?: Request[];
      excludeErrorStats?: boolean;
    };

    type Result = {
      duration: number;
      errors: number;
      timeouts: number;
      non2xx: number;
      statusCodeStats: Record<string, { count: number }>;
      requests: { total: number; sent: number };
    };

    type Instance = EventEmitter & { stop(): void };
  }

  function autocannon(
    options: autocannon.Options,
    callback: (err: Error | null, result: autocannon.Result) => void,
  ): autocannon.Instance;

  export default autocannon;
}
