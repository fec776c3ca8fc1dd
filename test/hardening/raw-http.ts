import { connect, type Socket } from 'node:net';

/** What came back on a raw connection before it closed. */
export type RawAnswer = {
  /** The status code, or undefined when the connection closed without an answer. */
  status: number | undefined;
  head: string;
  body: string;
  /** Milliseconds from connecting until the server closed the connection. */
  closedAfterMs: number;
};

/**
 * Sends `data` on a fresh TCP connection, ends the sending side (so the
 * server closes the connection once it has answered) and reads until the
 * server closes it, or rejects after `timeoutMs`.
 */
export function rawExchange(
  port: number,
  data: string | Buffer,
  timeoutMs = 15_000,
): Promise<RawAnswer> {
  const socket = connect(port, '127.0.0.1');
  socket.end(data);
  return readUntilClosed(socket, timeoutMs);
}

/** Reads a socket to its end; the server closing it is what ends the wait. */
export function readUntilClosed(socket: Socket, timeoutMs = 15_000): Promise<RawAnswer> {
  const started = Date.now();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after an answer still counts as closing.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({
        ...parseAnswer(Buffer.concat(chunks).toString('latin1')),
        closedAfterMs: Date.now() - started,
      });
    });
  });
}

function parseAnswer(text: string): Omit<RawAnswer, 'closedAfterMs'> {
  const end = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.1 ') || end < 0) return { status: undefined, head: text, body: '' };
  return { status: Number(text.slice(9, 12)), head: text.slice(0, end), body: text.slice(end + 4) };
}

/** Writes `text` one byte every `intervalMs` until it is all sent or the socket closes. */
export function trickle(socket: Socket, text: string, intervalMs: number): void {
  let sent = 0;
  const timer = setInterval(() => {
    if (sent >= text.length || socket.destroyed || !socket.writable) {
      clearInterval(timer);
      return;
    }
    socket.write(text[sent++]!);
  }, intervalMs);
  socket.once('close', () => clearInterval(timer));
}
