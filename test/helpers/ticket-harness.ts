// Shared setup for the ticket and 0-RTT tests: a server that answers each stream with what it
// received (length, SHA-256, whether it arrived as 0-RTT), and a client exchange that opens its
// stream in the same tick as connect(), so its bytes ride the first flight when a ticket allows.
import { createHash } from 'node:crypto';

import { Connection, Engine, EngineOptions, HandshakeInfo, SslConfig, SslConfigOptions, Stream, TicketRejectedReason } from '../../lib';
import { clientSsl, HOST, readAll, serverSsl } from './index';

export type ServerOptions = Pick<SslConfigOptions, 'earlyData' | 'ticketKeys' | 'ticketLifetime' | 'antiReplayWindow'>;

/** What the server saw on one stream, and what it answers. */
export interface Received {
  early: boolean;
  length: number;
  sha256: string;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function received(data: Buffer, early: boolean): Received {
  return { early, length: data.length, sha256: sha256(data) };
}

/** Something a test opened and must close, whatever happens. */
export interface Closable {
  close(): Promise<unknown> | void;
}

/**
 * Call at the top of a describe block: everything passed to the returned function is closed in
 * afterEach (in reverse order), so a failing test leaves no socket, engine or process behind.
 */
export function useCleanup(): <T extends Closable>(resource: T) => T {
  const open: Closable[] = [];
  afterEach(async () => {
    for (const resource of open.splice(0).reverse()) await resource.close();
  });
  return (resource) => {
    open.push(resource);
    return resource;
  };
}

export class TestServer implements Closable {
  readonly received: Received[] = [];
  /** stream.early of every stream the server was told about, in order, complete or not. */
  readonly opened: boolean[] = [];
  readonly connections: Connection[] = [];
  #streamWaiters: Array<() => void> = [];

  private constructor(
    readonly engine: Engine,
    readonly port: number,
  ) {
    engine.on('connection', (connection: Connection) => {
      this.connections.push(connection);
      connection.on('error', () => {}); // failures show up on the client side
      connection.on('stream', (stream: Stream) => this.#answer(stream));
    });
  }

  /** A listening server with the test certificate; `options` may also be a ready SslConfig. */
  static async start(options: ServerOptions | SslConfig = {}, engineOptions: Omit<EngineOptions, 'ssl'> = {}): Promise<TestServer> {
    const ssl = options instanceof SslConfig ? options : serverSsl('server', options);
    const engine = new Engine({ ...engineOptions, ssl });
    const { port } = await engine.listen({ host: HOST, port: 0 });
    return new TestServer(engine, port);
  }

  /** Resolves when `count` streams in total have been received completely. */
  async waitForReceived(count: number): Promise<void> {
    while (this.received.length < count) await new Promise<void>((resolve) => this.#streamWaiters.push(resolve));
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  #answer(stream: Stream): void {
    this.opened.push(stream.early);
    stream.on('error', () => {});
    readAll(stream).then(
      (data) => {
        const seen = received(data, stream.early);
        this.received.push(seen);
        for (const wake of this.#streamWaiters.splice(0)) wake();
        stream.end(JSON.stringify(seen));
      },
      () => {},
    );
  }
}

export function clientEngine(): Engine {
  return new Engine({ ssl: clientSsl() });
}

export interface ExchangeOptions {
  ticket?: Buffer;
  servername?: string;
  alpn?: string;
  /** Wait for at least one 'ticket' before closing (default true). */
  waitForTicket?: boolean;
}

export interface ExchangeResult {
  info: HandshakeInfo;
  /** What the server says it received. */
  reply: Received;
  resumed: boolean;
  earlyData: Connection['earlyData'];
  tickets: Buffer[];
  ticketRejected: TicketRejectedReason[];
  earlyDataRejected: number;
}

/**
 * One connection: connect (with a ticket if given), send `payload` on a stream opened in the same
 * tick, read the server's answer, optionally wait for a ticket, close gracefully. Rejects if the
 * connection fails; the connection is always gone when it settles.
 */
export async function exchange(client: Engine, port: number, payload: Buffer, options: ExchangeOptions = {}): Promise<ExchangeResult> {
  const connection = client.connect({
    host: HOST,
    port,
    servername: options.servername ?? 'localhost',
    alpn: options.alpn,
    ticket: options.ticket,
  });
  const tickets: Buffer[] = [];
  const ticketRejected: TicketRejectedReason[] = [];
  let earlyDataRejected = 0;
  let closing = false;
  const failed = new Promise<never>((_, reject) => {
    connection.once('close', (info) => {
      if (info.error || !closing) reject(info.error ?? new Error('the connection closed before the exchange completed'));
    });
  });
  failed.catch(() => {});
  const firstTicket = new Promise<void>((resolve) => {
    connection.on('ticket', (ticket: Buffer) => {
      tickets.push(ticket);
      resolve();
    });
  });
  connection.on('ticketRejected', (reason) => ticketRejected.push(reason));
  connection.on('earlyDataRejected', () => earlyDataRejected++);
  connection.on('error', () => {}); // surfaced through `failed`
  try {
    const stream = connection.openStream();
    const answer = readAll(stream);
    stream.end(payload);
    const reply = JSON.parse((await Promise.race([answer, failed])).toString()) as Received;
    const info = await connection.handshake;
    if (options.waitForTicket ?? true) await Promise.race([firstTicket, failed]);
    closing = true;
    await Promise.race([connection.close(), failed]);
    return { info, reply, resumed: connection.resumed, earlyData: connection.earlyData, tickets, ticketRejected, earlyDataRejected };
  } finally {
    connection.destroy();
  }
}

/** A full handshake with `port` that returns the first ticket the server issued. */
export async function fetchTicket(client: Engine, port: number): Promise<Buffer> {
  const { tickets } = await exchange(client, port, Buffer.from('ticket please'));
  return tickets[0];
}

/** Runs `task` over `items`, at most `limit` at a time. */
export async function runLimited<T>(items: T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await task(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Bytes that differ at every offset, so a shifted or repeated chunk changes the digest. */
export function payload(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 131 + (i >>> 8) * 7 + seed * 29) & 0xff;
  return out;
}
