// Workloads shared by the test suite (short variants: test/reliability.test.ts, test/load.test.ts)
// and the long-running scripts (scripts/soak.js, scripts/fuzz-datagrams.js load this file through
// scripts/lib/require-ts.js). Each one is bounded by a count and a deadline and returns counts,
// so a script can print them and a test can assert on them.
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Readable, Writable } from 'node:stream';

import { Connection, Engine, Stream } from '../../lib';
import { pattern } from './index';

export const CHUNK = 64 * 1024;

/** Writes `total` bytes of pattern(seed) with backpressure, then ends the stream. */
export function writePattern(stream: Writable, total: number, seed: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let offset = 0;
    const onError = (error: Error): void => reject(error);
    stream.once('error', onError);
    const step = (): void => {
      while (offset < total) {
        const length = Math.min(CHUNK, total - offset);
        const more = stream.write(pattern(length, seed, offset));
        offset += length;
        if (!more) {
          stream.once('drain', step);
          return;
        }
      }
      stream.end(() => {
        stream.off('error', onError);
        resolve();
      });
    };
    step();
  });
}

export interface PatternCheck {
  bytes: number;
  /** Offset of the first byte that differed from the pattern (undefined: none). */
  mismatchAt?: number;
}

/** Reads `stream` to its end, comparing every byte with pattern(seed) at its offset. */
export function checkPattern(stream: Readable, seed: number): Promise<PatternCheck> {
  return new Promise((resolve, reject) => {
    const result: PatternCheck = { bytes: 0 };
    stream.on('data', (chunk: Buffer) => {
      if (result.mismatchAt === undefined) {
        const expected = pattern(chunk.length, seed, result.bytes);
        if (!chunk.equals(expected)) {
          let i = 0;
          while (chunk[i] === expected[i]) i++;
          result.mismatchAt = result.bytes + i;
        }
      }
      result.bytes += chunk.length;
    });
    stream.once('end', () => resolve(result));
    stream.once('error', reject);
  });
}

/** Rejects with "<what> did not finish within <ms> ms" unless `promise` settles first. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/**
 * Server behaviour for bidirectional transfers: every stream's incoming bytes are checked against
 * pattern(1) while the server sends `size` bytes of pattern(2) back. Each stream's outcome is
 * appended to `results` when both directions are done.
 */
export function patternServer(size: number, results: Array<Promise<{ received: PatternCheck }>>): (connection: Connection) => void {
  return (connection) => {
    connection.on('stream', (stream: Stream) => {
      stream.on('error', () => {});
      const received = checkPattern(stream, 1);
      const sent = writePattern(stream, size, 2);
      results.push(Promise.all([received, sent]).then(([check]) => ({ received: check })));
    });
  };
}

/** Client half of patternServer: sends `size` bytes of pattern(1), checks `size` bytes of pattern(2). */
export async function patternClient(connection: Connection, size: number): Promise<{ received: PatternCheck }> {
  const stream = connection.openStream();
  const received = checkPattern(stream, 2);
  await writePattern(stream, size, 1);
  return { received: await received };
}

/** Sends `data` on a new stream and resolves with everything the peer sent back. */
export async function exchange(connection: Connection, data: Buffer): Promise<Buffer> {
  const stream = connection.openStream();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  stream.end(data);
  await done;
  return Buffer.concat(chunks);
}

/** Tallies outcomes by name ("ok", or an error code). */
export type Tally = Record<string, number>;
function count(tally: Tally, key: string): void {
  tally[key] = (tally[key] ?? 0) + 1;
}
const outcomeOf = (error: unknown): string => (error as { code?: string })?.code ?? String((error as Error)?.message ?? error);

export interface ConcurrentResult {
  connections: number;
  ok: number;
  outcomes: Tally;
}

/**
 * `count` connections at once, spread over `clients`, each doing one request/response (a
 * `size`-byte request echoed back) against an echo server on `port`; then all are closed.
 */
export async function concurrentRequests(options: {
  clients: Engine[];
  port: number;
  count: number;
  size?: number;
  host?: string;
  deadline: number;
}): Promise<ConcurrentResult> {
  const { clients, port, count: total, size = 1000, host = '127.0.0.1' } = options;
  const outcomes: Tally = {};
  const connections: Connection[] = [];
  const work = Array.from({ length: total }, async (_, i) => {
    const connection = clients[i % clients.length].connect({ host, port, servername: 'localhost' });
    connection.on('error', () => {});
    connections.push(connection);
    const request = pattern(size, i);
    const reply = await exchange(connection, request);
    if (!reply.equals(request)) throw new Error('wrong bytes');
  });
  const settled = await within(options.deadline, `${total} concurrent requests`, Promise.allSettled(work));
  for (const result of settled) count(outcomes, result.status === 'fulfilled' ? 'ok' : outcomeOf(result.reason));
  await within(options.deadline, 'closing the connections', Promise.all(connections.map((connection) => connection.close())));
  return { connections: total, ok: outcomes.ok ?? 0, outcomes };
}

export interface ResourceSample {
  rss: number;
  heapUsed: number;
  fds: number;
}

let gc: (() => void) | undefined;
/** Memory and open file descriptors of this process, after a full garbage collection. */
export async function resources(): Promise<ResourceSample> {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  // Let closed handles finish closing and finalizers run, then collect twice.
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed, fds: fs.readdirSync('/proc/self/fd').length };
}

export interface SequentialResult {
  handshakes: number;
  resumed: number;
  early: number;
  /** Attempts that offered a ticket. */
  offered: number;
  outcomes: Tally;
  /** Resource samples: [0] after the warm-up, then every `sampleEvery` handshakes. */
  samples: Array<ResourceSample & { after: number }>;
}

/**
 * `count` handshakes one after another, each with a small request; every other one resumes with
 * the newest ticket and sends its request as 0-RTT. Every `newEngineEvery`-th handshake uses a
 * fresh client engine (closed afterwards), so sockets and engine teardown are exercised too.
 * Resources are sampled after `warmup` handshakes and then every `sampleEvery`.
 */
export async function sequentialHandshakes(options: {
  makeClient: () => Engine;
  port: number;
  count: number;
  warmup?: number;
  sampleEvery?: number;
  newEngineEvery?: number;
  host?: string;
  deadline: number;
  onSample?: (sample: ResourceSample & { after: number }) => void;
}): Promise<SequentialResult> {
  const { makeClient, port, count: total, warmup = 100, sampleEvery = total, newEngineEvery = 10, host = '127.0.0.1' } = options;
  const result: SequentialResult = { handshakes: 0, resumed: 0, early: 0, offered: 0, outcomes: {}, samples: [] };
  const stopAt = Date.now() + options.deadline;
  let shared = makeClient();
  let ticket: Buffer | undefined;
  try {
    for (let i = 0; i < total; i++) {
      if (Date.now() > stopAt) throw new Error(`${total} sequential handshakes did not finish within ${options.deadline} ms (${i} done)`);
      const fresh = i % newEngineEvery === newEngineEvery - 1;
      const engine = fresh ? makeClient() : shared;
      const offer = i % 2 === 1 ? ticket : undefined;
      if (offer) result.offered++;
      try {
        const connection = engine.connect({ host, port, servername: 'localhost', ticket: offer });
        connection.on('error', () => {});
        connection.on('ticket', (received: Buffer) => (ticket = received));
        const request = Buffer.from(`handshake ${i}`);
        const reply = exchange(connection, request); // same tick: 0-RTT when resuming
        const info = await within(15000, `handshake ${i}`, connection.handshake);
        if (!(await within(15000, `request ${i}`, reply)).equals(request)) throw new Error('wrong bytes');
        result.handshakes++;
        if (info.resumed) result.resumed++;
        if (info.earlyData === 'accepted') result.early++;
        await within(15000, `close ${i}`, connection.close());
        count(result.outcomes, 'ok');
      } catch (error) {
        count(result.outcomes, outcomeOf(error));
      } finally {
        if (fresh) await engine.close();
      }
      const done = i + 1;
      if (done === warmup || (done > warmup && (done - warmup) % sampleEvery === 0) || done === total) {
        const sample = { after: done, ...(await resources()) };
        result.samples.push(sample);
        options.onSample?.(sample);
      }
    }
  } finally {
    await shared.close();
    shared = undefined as unknown as Engine;
  }
  return result;
}

export interface StreamsResult {
  streams: number;
  ok: number;
  bytes: number;
  lastId: bigint;
  outcomes: Tally;
}

/**
 * Opens `count` bidirectional streams on one connection to an echo server, at most `concurrency`
 * at a time (more than the peer's stream limit is fine: such streams wait for MAX_STREAMS), each
 * sending a small distinct payload and reading the echo; every stream is closed by both FINs.
 */
export async function manyStreams(connection: Connection, options: { count: number; concurrency: number; deadline: number }): Promise<StreamsResult> {
  const result: StreamsResult = { streams: 0, ok: 0, bytes: 0, lastId: -1n, outcomes: {} };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.count) {
      const n = next++;
      const stream = connection.openStream();
      const request = pattern(100 + (n % 900), n);
      try {
        const chunks: Buffer[] = [];
        await new Promise<void>((resolve, reject) => {
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.once('error', reject);
          // 'close': both directions are done and the stream is gone, not only 'end'.
          stream.once('close', () => (stream.readableEnded ? resolve() : reject(new Error('closed before its end'))));
          stream.end(request);
        });
        const reply = Buffer.concat(chunks);
        if (!reply.equals(request)) throw new Error('wrong bytes');
        result.ok++;
        result.bytes += reply.length;
        if (stream.id > result.lastId) result.lastId = stream.id;
        count(result.outcomes, 'ok');
      } catch (error) {
        count(result.outcomes, outcomeOf(error));
      }
      result.streams++;
    }
  };
  await within(options.deadline, `${options.count} streams`, Promise.all(Array.from({ length: options.concurrency }, worker)));
  return result;
}
