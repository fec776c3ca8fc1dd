import { WalletRpcError } from '../src/errors.js';
import { toColumns, type TransferColumns } from '../src/monitor/transfer-columns.js';
import { parseTransfersAnswer } from '../src/monitor/transfer-parser.js';
import { pidTagger } from '../src/tickets/secrets.js';

/**
 * Worker handler: reads one get_transfers answer as the wallet sent it
 * (decoding, quoting amounts, JSON.parse, checking every transfer and
 * computing its payment id tag) and answers with the checked transfers in
 * columns. A backlog's answer runs to tens of megabytes, and reading it
 * took more of the main thread than storing what it held.
 */

export type ParseTransfersItem = {
  answer: Uint8Array;
  /** Highest height a transfer may claim. */
  maxHeight: number;
  /** The key payment id tags are made with (Secrets.pidTagKey()). */
  pidTagKey: Uint8Array;
};

/** WalletRpcError's code does not survive the thread boundary as a thrown error. */
export type ParseTransfersOutcome =
  | { columns: TransferColumns }
  | { error: { code: string; message: string } };

export default function parseTransfers(item: ParseTransfersItem): ParseTransfersOutcome {
  const answer = Buffer.from(item.answer.buffer, item.answer.byteOffset, item.answer.byteLength);
  try {
    const transfers = parseTransfersAnswer(answer, item.maxHeight, pidTagger(item.pidTagKey));
    return { columns: toColumns(transfers) };
  } catch (err) {
    if (err instanceof WalletRpcError) return { error: { code: err.code, message: err.message } };
    throw err;
  }
}
