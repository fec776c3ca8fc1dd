import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A failure the fake serves to every call until it is cleared. */
export type Fault =
  /** HTTP 200 with a body that is not JSON. */
  | 'garbage'
  /** A well-formed JSON-RPC error object. */
  | 'rpc_error'
  /** HTTP 500 with a plain-text body. */
  | 'http_500'
  /** Reads the request and never answers. */
  | 'hang';

/** One transfer as the fake reports it; bigint fields are written as bare JSON integers. */
export type FakeTransfer = {
  txid: string;
  amount: bigint | number | string;
  height: number;
  payment_id?: string;
  subaddr_index?: { major: number; minor: number };
  unlock_time?: bigint | number;
  type?: 'in' | 'pool';
  [field: string]: unknown;
};

/** The wallet the fake pretends to be when no fault is set. */
export type FakeWallet = {
  height: number;
  address?: string;
  in?: FakeTransfer[];
  pool?: FakeTransfer[];
  /** The wallet as a refresh leaves it, taken on right after get_transfers answers. */
  afterTransfers?: FakeWallet;
};

export type RpcCall = { method: string; params: Record<string, unknown> };

/**
 * A stand-in for monero-wallet-rpc on a real HTTP port, used only for what a
 * real wallet cannot be made to do on demand: answer broken JSON, a JSON-RPC
 * error, HTTP 500, nothing at all, or numbers past 2^53. Without a fault it
 * answers get_height, get_address and get_transfers from a `FakeWallet`,
 * filtering transfers by height as the wallet does: above min_height, up to
 * and including max_height.
 */
export class FaultyWalletRpc {
  readonly calls: RpcCall[] = [];
  readonly #server: Server;
  #fault: Fault | undefined;
  #wallet: FakeWallet = { height: 1 };

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FaultyWalletRpc> {
    let fake: FaultyWalletRpc | undefined;
    const server = createServer((req, res) => void fake!.#handle(req, res));
    fake = new FaultyWalletRpc(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Calls whose method is `method`, in the order they arrived. */
  callsTo(method: string): RpcCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  fail(fault: Fault): void {
    this.#fault = fault;
  }

  /** Clears any fault and answers as `wallet` from now on. */
  serve(wallet: FakeWallet): void {
    this.#fault = undefined;
    this.#wallet = wallet;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request = await readRpcCall(req);
    this.calls.push({ method: request.method, params: request.params ?? {} });

    switch (this.#fault) {
      case 'hang':
        return;
      case 'http_500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
        return;
      case 'garbage':
        send(res, '{"jsonrpc":"2.0","id":1,"result":{"height": 12<html>');
        return;
      case 'rpc_error':
        send(
          res,
          jsonWithBigInts({
            jsonrpc: '2.0',
            id: request.id,
            error: { code: -13, message: 'No wallet file' },
          }),
        );
        return;
      case undefined:
        send(
          res,
          jsonWithBigInts({ jsonrpc: '2.0', id: request.id, result: this.#result(request) }),
        );
    }
  }

  #result(request: { method: string; params?: Record<string, unknown> }): unknown {
    const wallet = this.#wallet;
    const params = request.params ?? {};
    if (request.method === 'get_height') return { height: wallet.height };
    if (request.method === 'get_address') return { address: wallet.address ?? '' };
    if (request.method === 'get_transfers') {
      const min = Number(params.min_height ?? 0);
      const max = Number(params.max_height ?? Number.MAX_SAFE_INTEGER);
      const inRange = (wallet.in ?? []).filter((t) => t.height > min && t.height <= max);
      if (wallet.afterTransfers) this.#wallet = wallet.afterTransfers;
      return {
        in: inRange.map((t) => ({ type: 'in', ...t })),
        pool: params.pool === false ? [] : (wallet.pool ?? []).map((t) => ({ type: 'pool', ...t })),
      };
    }
    return {};
  }
}

/** JSON.stringify that writes bigint values as bare integers, as the wallet does. */
/** One JSON-RPC request as a wallet stand-in receives it. */
export type RpcRequest = { id: number; method: string; params?: Record<string, unknown> };

/** Reads a request's JSON-RPC body whole. */
export async function readRpcCall(req: IncomingMessage): Promise<RpcRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as RpcRequest;
}

export function jsonWithBigInts(value: unknown): string {
  const marked = JSON.stringify(value, (_, v: unknown) =>
    typeof v === 'bigint' ? `__bigint__${v.toString()}` : v,
  );
  return marked.replace(/"__bigint__(-?\d+)"/g, '$1');
}

function send(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(body);
}
