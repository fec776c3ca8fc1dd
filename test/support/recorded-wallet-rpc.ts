import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { jsonWithBigInts, readRpcCall } from './faulty-wallet-rpc.js';

/** One incoming transfer of the recording, in the fields get_transfers reports. */
export type RecordedTransfer = {
  txid: string;
  height: number;
  amount: bigint;
  /** 16 hex digits, or 16 zeros for a transfer without a payment id. */
  payment_id: string;
  subaddr_index: { major: number; minor: number };
};

export type RecordingOptions = {
  seed: number;
  /** The last block that holds transfers. */
  blocks: number;
  /** Payment ids that receive several transfers, as customers topping up do. */
  customers: number;
  /** Amounts below this are dust; a share of the recording is under it. */
  dustFloor: bigint;
};

/** A payment id and the recording's transfers to it. */
export type Recording = {
  transfers: RecordedTransfer[];
  customers: string[];
};

const NO_PAYMENT_ID = '0000000000000000';
/** 2^53 + 1: an amount JSON.parse would round. */
const PAST_DOUBLE = 9_007_199_254_740_993n;

/**
 * A deterministic stand-in for a long get_transfers recording: thousands
 * of incoming transfers over `blocks` blocks, with the mix a busy wallet
 * shows. Customers pay the same payment id several times, some transfers
 * carry no payment id, some are dust, some amounts pass 2^53, and some
 * transactions pay two subaddresses at once (one entry per subaddress, as
 * the wallet reports them).
 */
export function makeRecording(options: RecordingOptions): Recording {
  const random = seededRandom(options.seed);
  const hex = (bytes: number) =>
    Array.from({ length: bytes }, () =>
      Math.floor(random() * 256)
        .toString(16)
        .padStart(2, '0'),
    ).join('');
  const customers = Array.from({ length: options.customers }, () => hex(8));
  const transfers: RecordedTransfer[] = [];

  for (let height = 1; height <= options.blocks; height++) {
    const count = Math.floor(random() * 5);
    for (let i = 0; i < count; i++) {
      const roll = random();
      const paymentId =
        roll < 0.03
          ? NO_PAYMENT_ID
          : roll < 0.6
            ? customers[Math.floor(random() * customers.length)]!
            : hex(8);
      const amount =
        random() < 0.05
          ? BigInt(1 + Math.floor(random() * Number(options.dustFloor - 1n)))
          : random() < 0.03
            ? PAST_DOUBLE + BigInt(Math.floor(random() * 1e6))
            : BigInt(options.dustFloor) + BigInt(Math.floor(random() * 1e12));
      const txid = hex(32);
      const minor = Math.floor(random() * 4);
      transfers.push({
        txid,
        height,
        amount,
        payment_id: paymentId,
        subaddr_index: { major: 0, minor },
      });
      if (random() < 0.05) {
        // The same transaction paying a second subaddress.
        transfers.push({
          txid,
          height,
          amount: amount + 1n,
          payment_id: paymentId,
          subaddr_index: { major: 0, minor: minor + 4 },
        });
      }
    }
  }
  return { transfers, customers };
}

/**
 * A fake monero-wallet-rpc that serves a recorded get_transfers answer. The
 * real wallet cannot be made to hold thousands of transfers on demand, so
 * this one replays a recording, revealing it as its chain grows by
 * `blocksPerTick` blocks every `tickMs`, as a wallet that keeps refreshing
 * does, until `finalHeight`. Transfers are written with every field the
 * real wallet sends, amounts as bare JSON integers.
 */
export class RecordedWalletRpc {
  readonly #server: Server;
  readonly #recording: Recording;
  readonly #finalHeight: number;
  readonly #timer: NodeJS.Timeout;
  #height: number;
  #limit: number;
  /** How many get_transfers answers were served, for tests that wait on progress. */
  transferCalls = 0;

  private constructor(server: Server, recording: Recording, options: RecordedWalletOptions) {
    this.#server = server;
    this.#recording = recording;
    this.#height = options.startHeight;
    this.#finalHeight = options.finalHeight;
    this.#limit = options.finalHeight;
    this.#timer = setInterval(() => {
      this.#height = Math.max(
        this.#height,
        Math.min(this.#limit, this.#height + options.blocksPerTick),
      );
    }, options.tickMs);
    this.#timer.unref();
  }

  static async start(
    recording: Recording,
    options: RecordedWalletOptions,
  ): Promise<RecordedWalletRpc> {
    let fake: RecordedWalletRpc | undefined;
    const server = createServer((req, res) => void fake!.#handle(req, res));
    fake = new RecordedWalletRpc(server, recording, options);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The chain height the fake reports now. */
  get height(): number {
    return this.#height;
  }

  get finalHeight(): number {
    return this.#finalHeight;
  }

  /**
   * Lets the chain grow no further than `height` (and never past the final
   * height), so that a test can pace the chain by its own progress rather
   * than by the clock of a machine that may be busy.
   */
  allowUpTo(height: number): void {
    this.#limit = Math.min(height, this.#finalHeight);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request = await readRpcCall(req);
    const result = this.#result(request.method, request.params ?? {});
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(jsonWithBigInts({ jsonrpc: '2.0', id: request.id, result }));
  }

  #result(method: string, params: Record<string, unknown>): unknown {
    if (method === 'get_height') return { height: this.#height };
    if (method === 'get_address') return { address: RECORDED_ADDRESS, addresses: [] };
    if (method !== 'get_transfers') return {};
    this.transferCalls++;
    const min = Number(params.min_height ?? 0);
    const max = Math.min(Number(params.max_height ?? Infinity), this.#height);
    const entries = this.#recording.transfers
      .filter((t) => t.height > min && t.height <= max)
      .map((t) => this.#entry(t));
    return entries.length > 0 ? { in: entries } : {};
  }

  #entry(transfer: RecordedTransfer): Record<string, unknown> {
    const confirmations = this.#height - transfer.height;
    return {
      address: RECORDED_ADDRESS,
      amount: transfer.amount,
      amounts: [transfer.amount],
      confirmations,
      double_spend_seen: false,
      fee: 30_680_000n,
      height: transfer.height,
      locked: confirmations < 10,
      note: '',
      payment_id: transfer.payment_id,
      subaddr_index: transfer.subaddr_index,
      subaddr_indices: [transfer.subaddr_index],
      suggested_confirmations_threshold: 1,
      timestamp: 1_700_000_000 + transfer.height * 120,
      txid: transfer.txid,
      type: 'in',
      unlock_time: 0,
    };
  }
}

export type RecordedWalletOptions = {
  /** The height reported by the first get_height. */
  startHeight: number;
  /** Where the chain stops growing. */
  finalHeight: number;
  blocksPerTick: number;
  tickMs: number;
};

/** The mainnet address the recording was made for (a wallet-rpc test vector). */
export const RECORDED_ADDRESS =
  '45CASDSdmXyVmqEmMETxV2GVVjNPEXbsMfJKvCDijPbujFpJ198UuLG3MWxpFrZyeN54wXKJFg9LJK3DH1nBWQ9FRqwSWdT';

/** A small seeded generator (mulberry32) in [0, 1), so a recording is the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
