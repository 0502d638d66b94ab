// Streams: QUIC streams are node:stream Duplexes. Data arrives byte-exact and in order, end()
// sends FIN, destroy(err) resets, and a reader that stops reading stops the writer (flow control
// reaches all the way back to write()).
import path from 'node:path';

import { Stream } from '../lib';
import { next, pattern, readAll, roundTrip, useEngines } from './helpers';
import { compileLib, CompiledLib } from './helpers/compile-lib';
import { runToExit } from './helpers/processes';

const MiB = 1024 * 1024;

describe('streams', () => {
  const engines = useEngines();

  test('a 4 MiB echo comes back byte-exact', async () => {
    const { connection } = await engines.pair();
    const data = pattern(4 * MiB, 1);
    const reply = await roundTrip(connection, data);
    expect(reply.length).toBe(data.length);
    expect(reply.equals(data)).toBe(true);
  });

  test('100 streams on one connection each echo their own data', async () => {
    const { connection } = await engines.pair();
    const payloads = Array.from({ length: 100 }, (_, i) =>
      Buffer.concat([Buffer.from(`stream ${i}:`), pattern(1000 + i * 97, i)]),
    );
    const replies = await Promise.all(payloads.map((data) => roundTrip(connection, data)));
    replies.forEach((reply, i) => expect(reply.equals(payloads[i])).toBe(true));
  });

  test('streams beyond the peer\'s limit wait with id -1n, then open as earlier ones close', async () => {
    const { connection } = await engines.pair({ engine: { maxStreamsBidi: 4 } });
    const payloads = Array.from({ length: 12 }, (_, i) => pattern(20_000, 100 + i));
    const streams = payloads.map(() => connection.openStream());
    expect(streams.slice(0, 4).map((stream) => stream.id)).toEqual([0n, 4n, 8n, 12n]);
    expect(streams.slice(4).every((stream) => stream.id === -1n)).toBe(true);
    // Writing to a waiting stream is fine: the data goes out once the stream opens.
    const replies = streams.map((stream, i) => {
      const reply = readAll(stream);
      stream.end(payloads[i]);
      return reply;
    });
    (await Promise.all(replies)).forEach((reply, i) => expect(reply.equals(payloads[i])).toBe(true));
    expect(new Set(streams.map((stream) => stream.id)).size).toBe(12);
    expect(streams.every((stream) => stream.id >= 0n)).toBe(true);
  });

  test('a waiting stream destroyed before it opens is forgotten: it takes no ID and never reaches the peer', async () => {
    const seen: bigint[] = [];
    const { connection } = await engines.pair({
      engine: { maxStreamsBidi: 1 },
      onConnection: (accepted) =>
        accepted.on('stream', (stream: Stream) => {
          seen.push(stream.id);
          stream.pipe(stream);
        }),
    });
    const [first, doomed, last] = [connection.openStream(), connection.openStream(), connection.openStream()];
    expect([first.id, doomed.id, last.id]).toEqual([0n, -1n, -1n]);
    doomed.destroy();
    await next(doomed, 'close');
    const replies = [readAll(first), readAll(last)];
    first.end('one');
    last.end('two');
    expect((await Promise.all(replies)).map(String)).toEqual(['one', 'two']);
    expect(last.id).toBe(4n);
    expect(seen).toEqual([0n, 4n]);
  });

  test('stream ids follow RFC 9000: client-initiated bidirectional ids are 0, 4, 8, ...', async () => {
    const { connection } = await engines.pair();
    const streams = [connection.openStream(), connection.openStream(), connection.openStream()];
    expect(streams.map((stream) => stream.id)).toEqual([0n, 4n, 8n]);
    expect(streams.every((stream) => stream.local && !stream.unidirectional)).toBe(true);
    for (const stream of streams) stream.destroy();
  });

  test('a unidirectional stream carries data one way; the receiving side is read-only', async () => {
    const { connection, serverConnection } = await engines.pair({ onConnection: () => {} });
    const incoming = next<Stream>(serverConnection, 'stream');

    const stream = connection.openStream({ unidirectional: true });
    const senderClosed = next(stream, 'close');
    expect(stream.unidirectional).toBe(true);
    expect(stream.id & 3n).toBe(2n); // client-initiated unidirectional
    stream.end(pattern(100_000, 7));

    const serverStream = await incoming;
    expect(serverStream.unidirectional).toBe(true);
    expect(serverStream.local).toBe(false);
    expect(serverStream.id).toBe(stream.id);
    expect(serverStream.writable).toBe(false);
    expect((await readAll(serverStream)).equals(pattern(100_000, 7))).toBe(true);
    // The sender's stream completes on its own: its (empty) read side ends, its write side finishes.
    await senderClosed;
    expect(stream.readableEnded && stream.writableFinished).toBe(true);
  });

  test('a server can open a unidirectional stream to the client', async () => {
    const { connection, serverConnection } = await engines.pair();
    const incoming = next<Stream>(connection, 'stream');
    const outgoing = serverConnection.openStream({ unidirectional: true });
    expect(outgoing.id & 3n).toBe(3n); // server-initiated unidirectional
    outgoing.end('from the server');
    const stream = await incoming;
    expect(stream.unidirectional).toBe(true);
    expect((await readAll(stream)).toString()).toBe('from the server');
  });

  test("end() sends FIN: the peer gets 'end' and can still answer (half-close)", async () => {
    const { connection } = await engines.pair({
      onConnection: (server) =>
        server.on('stream', (stream: Stream) => {
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => stream.end(`got ${Buffer.concat(chunks).toString()} and FIN`));
        }),
    });
    const stream = connection.openStream();
    const reply = readAll(stream);
    stream.end('hello');
    expect((await reply).toString()).toBe('got hello and FIN');
  });

  test("destroy(err) resets the stream: the peer stream is 'aborted' (no 'error', like node:http2) and reads the code as rstCode", async () => {
    const { connection, serverConnection } = await engines.pair({ onConnection: () => {} });
    const incoming = next<Stream>(serverConnection, 'stream');
    const stream = connection.openStream();
    stream.on('error', () => {}); // our own destroy(err) is re-emitted here
    stream.write('some data');

    const serverStream = await incoming;
    await next(serverStream, 'data');
    const errors: Error[] = [];
    serverStream.on('error', (error) => errors.push(error));
    const ended = Promise.all([next(serverStream, 'aborted'), next(serverStream, 'close')]);
    stream.destroy(Object.assign(new Error('abort'), { quicCode: 7 }));
    await ended;

    expect(serverStream.rstCode).toBe(7);
    expect(serverStream.aborted).toBe(true);
    expect(errors).toEqual([]);
  });

  test('a server-side destroy(err) without quicCode resets with code 1', async () => {
    const { connection } = await engines.pair({
      onConnection: (server) =>
        server.on('stream', (stream: Stream) => {
          stream.on('error', () => {});
          // Refuse streams that start with "please"; echo the rest.
          stream.once('data', (chunk: Buffer) => {
            if (chunk.toString().startsWith('please')) stream.destroy(new Error('no thanks'));
            else stream.end(chunk);
          });
        }),
    });
    const stream = connection.openStream();
    stream.write('please');
    await Promise.all([next(stream, 'aborted'), next(stream, 'close')]);
    expect(stream.rstCode).toBe(1);
    // The connection is unaffected.
    expect((await roundTrip(connection, Buffer.from('still here'))).toString()).toBe('still here');
  });

  test('backpressure: a reader that stops reading stops the writer, with bounded memory, and nothing is lost', async () => {
    const TOTAL = 32 * MiB;
    const CHUNK = 64 * 1024;
    const { connection, serverConnection } = await engines.pair({ onConnection: () => {} });
    // The server takes the stream but does not read it (paused mode, no 'data' listener).
    const incoming = next<Stream>(serverConnection, 'stream');
    const rssBefore = process.memoryUsage().rss;

    // The client writes as fast as write() allows, waiting for 'drain' whenever it returns false.
    const stream = connection.openStream();
    let accepted = 0; // bytes handed to write()
    let sawFalse = false;
    const written = new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      const pump = (): void => {
        while (accepted < TOTAL) {
          const ok = stream.write(pattern(CHUNK, 3, accepted));
          accepted += CHUNK;
          if (!ok) {
            sawFalse = true;
            stream.once('drain', pump);
            return;
          }
        }
        stream.end(resolve);
      };
      pump();
    });

    const serverStream = await incoming;
    // Let the transfer run until it stalls: neither side's count changes any more.
    await settle(() => serverStream.readableLength + accepted);

    expect(sawFalse).toBe(true);
    expect(accepted).toBeLessThan(16 * MiB);
    expect(stream.writableLength + serverStream.readableLength).toBeLessThan(16 * MiB);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * MiB);

    // Now read: every byte arrives, in order, and the writer finishes.
    let received = 0;
    let mismatchAt = -1;
    const ended = new Promise<void>((resolve, reject) => {
      serverStream.on('data', (chunk: Buffer) => {
        if (mismatchAt < 0 && !chunk.equals(pattern(chunk.length, 3, received))) mismatchAt = received;
        received += chunk.length;
      });
      serverStream.once('end', resolve);
      serverStream.once('error', reject);
    });
    await Promise.all([ended, written]);
    expect(received).toBe(TOTAL);
    expect(mismatchAt).toBe(-1);
  });

  describe("the README's echo server cannot be crashed by a client", () => {
    let lib: CompiledLib;
    beforeAll(() => {
      lib = compileLib();
    });
    afterAll(() => lib?.remove());

    test('streams reset mid-transfer, connections destroyed or closed with transfers open: no unhandled error, still echoing', async () => {
      const result = await runToExit(process.execPath, [path.join(__dirname, 'fixtures', 'readme-echo-abuse.js'), lib.dir], lib.env, 30000);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ afterResets: 'still echoing', afterCloses: 'and still' });
    });
  });
});

/** Resolves once `measure()` has not changed for a few consecutive 100 ms samples. */
async function settle(measure: () => number, quietSamples = 4): Promise<void> {
  let last = -1;
  let quiet = 0;
  while (quiet < quietSamples) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = measure();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}
