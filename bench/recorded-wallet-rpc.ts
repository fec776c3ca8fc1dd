import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A wallet RPC that replays one recorded answer, for the ingest scenario.
 * It is not monero-wallet-rpc: no regtest wallet holds 100,000 incoming
 * transfers, and making one would take hours. The answer is generated once
 * per run in the shape monero-wallet-rpc gives `get_transfers` (every field
 * of an incoming transfer, amounts as bare JSON integers) and then served
 * as recorded: `get_height`, `get_address` and height-filtered
 * `get_transfers`, nothing else.
 */

export type RecordedAnswer = {
  /** Chain height the wallet reports; above every transfer by more than the confirmations. */
  height: number;
  /** The height of the first transfer, where the wallet was restored from. */
  firstHeight: number;
  address: string;
  transfers: Record<string, unknown>[];
};

const FIRST_HEIGHT = 2_000_000;
const TRANSFERS_PER_BLOCK = 50;
const CONFIRMED_DEPTH = 20;

/** `count` incoming transfers, each paying a different payment id, all confirmed. */
export function recordAnswer(count: number, address: string): RecordedAnswer {
  const transfers: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const height = FIRST_HEIGHT + Math.floor(i / TRANSFERS_PER_BLOCK);
    const amount = 1_000_000_000_000 + i;
    transfers.push({
      address,
      amount,
      amounts: [amount],
      confirmations: 0,
      double_spend_seen: false,
      fee: 30_680_000,
      height,
      locked: false,
      note: '',
      payment_id: randomBytes(8).toString('hex'),
      subaddr_index: { major: 0, minor: 0 },
      subaddr_indices: [{ major: 0, minor: 0 }],
      suggested_confirmations_threshold: 1,
      timestamp: 1_700_000_000 + i,
      txid: randomBytes(32).toString('hex'),
      type: 'in',
      unlock_time: 0,
    });
  }
  const height = FIRST_HEIGHT + Math.ceil(count / TRANSFERS_PER_BLOCK) + CONFIRMED_DEPTH;
  for (const transfer of transfers) transfer.confirmations = height - (transfer.height as number);
  return { height, firstHeight: FIRST_HEIGHT, address, transfers };
}

export class RecordedWalletRpc {
  readonly #server: Server;
  readonly #answer: RecordedAnswer;
  /** Each transfer serialized, in height order, so that a range's answer is a join. */
  readonly #pieces: string[];
  /** Serialized `get_transfers` results by height range, kept for the next service. */
  readonly #results = new Map<string, string>();

  private constructor(answer: RecordedAnswer) {
    this.#answer = answer;
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Longer than the monitor's poll interval, so that a kept-alive
    // connection is never closed just as the monitor reuses it.
    this.#server.keepAliveTimeout = 60_000;
    // Serialized before the service asks, so the scenario times the
    // service and not this server.
    this.#pieces = answer.transfers.map((t) => JSON.stringify(t));
  }

  static async start(answer: RecordedAnswer): Promise<RecordedWalletRpc> {
    const rpc = new RecordedWalletRpc(answer);
    await new Promise<void>((resolve) => rpc.#server.listen(0, '127.0.0.1', resolve));
    return rpc;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const call = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        id: number;
        method: string;
        params?: { min_height?: number; max_height?: number };
      };
      const result = this.#result(call.method, call.params ?? {});
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"id":${JSON.stringify(call.id)},"jsonrpc":"2.0",${result}}`);
    });
  }

  #result(method: string, params: { min_height?: number; max_height?: number }): string {
    switch (method) {
      case 'get_height':
        return `"result":{"height":${this.#answer.height}}`;
      case 'get_address':
        return `"result":${JSON.stringify({ address: this.#answer.address, addresses: [] })}`;
      case 'get_transfers':
        return `"result":${this.#transfersResult(params.min_height ?? 0, params.max_height ?? this.#answer.height)}`;
      default:
        return `"error":{"code":-32601,"message":"Method not found"}`;
    }
  }

  /** Transfers with min < height <= max, as monero-wallet-rpc filters them. */
  #transfersResult(min: number, max: number): string {
    // No transfer lies above the chain height, so every max above it asks
    // for the same set as the height itself; the monitor asks with no bound.
    const key = `${min}:${Math.min(max, this.#answer.height)}`;
    let text = this.#results.get(key);
    if (text === undefined) {
      const first = this.#firstAbove(min);
      const end = this.#firstAbove(max);
      text = end > first ? `{"in":[${this.#pieces.slice(first, end).join(',')}]}` : '{}';
      this.#results.set(key, text);
    }
    return text;
  }

  /** The index of the first transfer above `height`; transfers are in height order. */
  #firstAbove(height: number): number {
    const { transfers } = this.#answer;
    let low = 0;
    let high = transfers.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((transfers[middle]!.height as number) > height) high = middle;
      else low = middle + 1;
    }
    return low;
  }
}
