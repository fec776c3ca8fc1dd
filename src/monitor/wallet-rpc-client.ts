import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

import { WalletRpcError } from '../errors.js';

export type RawTransfer = Record<string, unknown>;

export type WalletRpcClientOptions = {
  url: string;
  timeoutMs: number;
  /** Upper bound on an answer's size; a wallet that sends more is broken. */
  maxResponseBytes?: number;
};

/**
 * A JSON-RPC client for monero-wallet-rpc. Amounts can exceed 2^53, which
 * JSON.parse would round, so the amount fields are turned into strings
 * before parsing and read as bigint by the caller.
 */
export class WalletRpcClient {
  readonly #endpoint: URL;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #request: typeof httpRequest;
  readonly #agent: HttpAgent;
  #nextId = 1;

  constructor(options: WalletRpcClientOptions) {
    // An error that quotes the URL would put credentials in every log line
    // about a failed poll; the wallet RPC is reached without login anyway.
    const url = new URL(options.url);
    if (url.username || url.password) {
      throw new RangeError('url must not carry credentials: the wallet RPC is reached without login');
    }
    this.#endpoint = new URL('/json_rpc', url);
    this.#timeoutMs = options.timeoutMs;
    this.#maxBytes = options.maxResponseBytes ?? 512 * 1024 * 1024;
    const https = url.protocol === 'https:';
    this.#request = https ? httpsRequest : httpRequest;
    this.#agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  async call(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return parseAnswer(method, await this.answer(method, params));
  }

  /** A call's answer as the wallet sent it, for parsing elsewhere (parseAnswer). */
  async answer(method: string, params: Record<string, unknown> = {}): Promise<Buffer> {
    const body = JSON.stringify({ jsonrpc: '2.0', id: this.#nextId++, method, params });
    let answer: { status: number; body: Buffer };
    try {
      answer = await this.#post(body);
    } catch (err) {
      if (err instanceof WalletRpcError) throw err;
      throw new WalletRpcError('rpc_unreachable', `wallet RPC ${method} failed: ${describe(err)}`);
    }
    if (answer.status < 200 || answer.status > 299) {
      throw new WalletRpcError('rpc_http_error', `wallet RPC ${method} answered HTTP ${answer.status}`);
    }
    return answer.body;
  }

  /**
   * One POST, its answer read whole up to the size limit, within the
   * timeout. node:http rather than fetch: a backlog answer runs to tens of
   * megabytes, and reading it through fetch's web stream took about as
   * long as parsing it (bench/README.md, ingest).
   */
  #post(body: string): Promise<{ status: number; body: Buffer }> {
    const limit = this.#maxBytes;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: unknown, answer?: { status: number; body: Buffer }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err === undefined) resolve(answer!);
        else {
          req.destroy();
          reject(err);
        }
      };
      const timer = setTimeout(
        () => settle(new Error(`no answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      const req = this.#request(
        this.#endpoint,
        {
          method: 'POST',
          agent: this.#agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res: IncomingMessage) => {
          if (Number(res.headers['content-length'] ?? 0) > limit) {
            settle(tooLarge());
            return;
          }
          const chunks: Buffer[] = [];
          let total = 0;
          res.on('data', (chunk: Buffer) => {
            total += chunk.length;
            if (total > limit) settle(tooLarge());
            else chunks.push(chunk);
          });
          res.on('end', () =>
            settle(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks, total) }),
          );
          res.on('error', (err) => settle(err));
          res.on('close', () => settle(new Error('connection closed before the answer ended')));
        },
      );
      req.on('error', (err) => settle(err));
      req.end(body);
    });
  }

  async getHeight(): Promise<number> {
    const result = await this.call('get_height');
    const height = result.height;
    if (!Number.isSafeInteger(height) || (height as number) < 0 || (height as number) > 1e9) {
      throw new WalletRpcError('rpc_bad_answer', 'wallet RPC get_height answered no valid height');
    }
    return height as number;
  }

  async getAddress(): Promise<string> {
    const result = await this.call('get_address', { account_index: 0 });
    if (typeof result.address !== 'string') {
      throw new WalletRpcError('rpc_bad_answer', 'wallet RPC get_address answered no address');
    }
    return result.address;
  }

  /** Incoming transfers with heights in (minHeight, maxHeight], and the pool's if asked. */
  async incomingTransfers(minHeight: number, maxHeight: number, pool = true): Promise<RawTransfer[]> {
    return transferList(await this.transfersAnswer(minHeight, maxHeight, pool));
  }

  /** The get_transfers answer of incomingTransfers(), unread (transferList reads it). */
  transfersAnswer(minHeight: number, maxHeight: number, pool = true): Promise<Buffer> {
    return this.answer('get_transfers', {
      in: true,
      pool,
      filter_by_height: true,
      min_height: minHeight,
      max_height: maxHeight,
    });
  }
}

/** The incoming and pool transfers of a get_transfers answer, each still unchecked. */
export function transferList(answer: Buffer): RawTransfer[] {
  const result = parseAnswer('get_transfers', answer);
  const lists = [result.in ?? [], result.pool ?? []];
  for (const list of lists) {
    if (!Array.isArray(list)) {
      throw new WalletRpcError('rpc_bad_answer', 'wallet RPC get_transfers answered a non-list');
    }
  }
  return (lists as unknown[][]).flat() as RawTransfer[];
}

/** The result object of a JSON-RPC answer, with amounts kept exact as strings. */
export function parseAnswer(method: string, answer: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(quoteAmounts(answer.toString('utf8')));
  } catch {
    throw new WalletRpcError('rpc_bad_answer', `wallet RPC ${method} answered invalid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object') {
    throw new WalletRpcError('rpc_bad_answer', `wallet RPC ${method} answered a non-object`);
  }
  const { error, result } = parsed as { error?: { message?: unknown }; result?: unknown };
  if (error) {
    const message = typeof error.message === 'string' ? error.message.slice(0, 200) : 'unknown';
    throw new WalletRpcError('rpc_error', `wallet RPC ${method} failed: ${message}`);
  }
  if (result === null || typeof result !== 'object' || Array.isArray(result)) {
    throw new WalletRpcError('rpc_bad_answer', `wallet RPC ${method} answered no result object`);
  }
  return result as Record<string, unknown>;
}

/** A money field's key and the separator after it; the value starts at lastIndex. */
const MONEY_KEY = /"(amounts?|fee|unlock_time)"\s*:\s*/g;

/**
 * Quotes the integer values of money fields so that they survive JSON.parse
 * exactly. Inside a JSON string a quote is always escaped, so a key pattern
 * that starts with a bare quote can only match a real key. Every number
 * that follows such a key, or stands in an `amounts` list, is quoted as
 * written, fractions and exponents included, so that a malformed amount
 * stays recognisably malformed.
 *
 * One pass that only finds the keys, with the numbers read by hand and the
 * text built by concatenation (which V8 keeps as a rope until JSON.parse
 * flattens it once): two replace() passes with capture groups took a
 * quarter of the main thread's time on a 54 MB answer.
 */
export function quoteAmounts(text: string): string {
  const key = new RegExp(MONEY_KEY);
  let out = '';
  let copied = 0;
  for (let match = key.exec(text); match !== null; match = key.exec(text)) {
    const start = key.lastIndex;
    if (match[1] === 'amounts') {
      const close = text.charCodeAt(start) === 0x5b ? text.indexOf(']', start) : -1;
      if (close < 0) continue;
      for (let i = start + 1; i < close; ) {
        const end = numberEnd(text, i);
        if (end < 0) {
          i++;
          continue;
        }
        out += `${text.slice(copied, i)}"${text.slice(i, end)}"`;
        copied = i = end;
      }
      key.lastIndex = close;
      continue;
    }
    const end = numberEnd(text, start);
    if (end < 0) continue;
    out += `${text.slice(copied, start)}"${text.slice(start, end)}"`;
    copied = key.lastIndex = end;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/**
 * Where a number written as -?\d+(\.\d+)?([eE][+-]?\d+)? that starts at
 * `at` ends, or -1 when none starts there.
 */
function numberEnd(text: string, at: number): number {
  let i = at;
  if (text.charCodeAt(i) === 0x2d) i++;
  const digits = skipDigits(text, i);
  if (digits === i) return -1;
  i = digits;
  if (text.charCodeAt(i) === 0x2e) {
    const fraction = skipDigits(text, i + 1);
    if (fraction > i + 1) i = fraction;
  }
  const e = text.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    const sign = text.charCodeAt(i + 1);
    const from = sign === 0x2b || sign === 0x2d ? i + 2 : i + 1;
    const exponent = skipDigits(text, from);
    if (exponent > from) i = exponent;
  }
  return i;
}

function skipDigits(text: string, from: number): number {
  let i = from;
  for (let c = text.charCodeAt(i); c >= 0x30 && c <= 0x39; c = text.charCodeAt(++i));
  return i;
}

function tooLarge(): WalletRpcError {
  return new WalletRpcError('rpc_bad_answer', 'wallet RPC answer too large');
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const { code, errors } = err as { code?: string; errors?: { code?: string }[] };
    return code ?? errors?.[0]?.code ?? err.message;
  }
  return 'unknown error';
}
