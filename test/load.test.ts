// Load (short variants; scripts/soak.js runs the long ones): many concurrent connections on one
// server engine, many sequential handshakes (half resumed with 0-RTT) with memory and file
// descriptors flat, and thousands of streams opened and closed on one connection.
import { Connection, Stream } from '../lib';
import { serverSsl, useEngines } from './helpers';
import { concurrentRequests, manyStreams, resources, sequentialHandshakes } from './helpers/workloads';

const UNDER_ASAN = /libasan/.test(process.env.LD_PRELOAD ?? '');

const MIB = 1024 * 1024;

describe('load', () => {
  const engines = useEngines();

  test('200 concurrent connections on one server engine, each a request/response: all succeed', async () => {
    const server = await engines.server();
    const clients = Array.from({ length: 4 }, () => engines.client());
    const result = await concurrentRequests({ clients, port: server.port, count: 200, size: 2000, deadline: 45000 });
    expect(result).toEqual({ connections: 200, ok: 200, outcomes: { ok: 200 } });
    expect(server.connections).toHaveLength(200);
  });

  // Growth allowed after the 100-handshake warm-up, measured after a full GC: open fds +0
  // (every engine's socket and every connection's timer is closed again), RSS +24 MiB (malloc
  // arenas and V8's heap settle in steps; a leak of one connection's state per handshake would
  // be tens of MiB here and grows linearly in scripts/soak.js's 10,000).
  test('1,000 sequential handshakes, half resumed with 0-RTT: all succeed; open fds +0, RSS +24 MiB at most', async () => {
    const server = await engines.server({ ssl: serverSsl('server', { earlyData: true }) });
    const result = await sequentialHandshakes({
      makeClient: () => engines.client(),
      port: server.port,
      count: 1000,
      warmup: 100,
      newEngineEvery: 10,
      deadline: 60000,
    });
    expect(result.outcomes).toEqual({ ok: 1000 });
    expect(result.offered).toBe(500);
    expect(result.resumed).toBe(500);
    expect(result.early).toBe(500);
    const [start, end] = [result.samples[0], result.samples.at(-1)!];
    expect(start.after).toBe(100);
    expect(end.after).toBe(1000);
    expect(end.fds - start.fds).toBeLessThanOrEqual(0);
    // Under AddressSanitizer freed memory sits in its quarantine: RSS says nothing there.
    if (!UNDER_ASAN) expect(end.rss - start.rss).toBeLessThan(24 * MIB);
    // Everything the server had is gone too.
    expect(server.connections.every((connection) => connection.closed)).toBe(true);
  });

  test('2,000 streams opened and closed on one connection (300 at a time, over the peer limit of 128): all echo, ids in order', async () => {
    const streamsSeen: bigint[] = [];
    const { connection, serverConnection } = await engines.pair({
      onConnection: (accepted: Connection) =>
        accepted.on('stream', (stream: Stream) => {
          streamsSeen.push(stream.id);
          stream.on('error', () => {});
          stream.pipe(stream);
        }),
    });
    const before = await resources();
    const result = await manyStreams(connection, { count: 2000, concurrency: 300, deadline: 45000 });
    expect(result.outcomes).toEqual({ ok: 2000 });
    expect(result.lastId).toBe(4n * 1999n); // client bidi ids 0, 4, 8, ...: none skipped or reused
    expect(streamsSeen).toHaveLength(2000);
    expect(new Set(streamsSeen).size).toBe(2000);
    const after = await resources();
    expect(after.fds).toBe(before.fds);
    // Both ends still work afterwards.
    expect(connection.closed).toBe(false);
    expect(serverConnection.closed).toBe(false);
    const more = await manyStreams(connection, { count: 10, concurrency: 10, deadline: 10000 });
    expect(more.ok).toBe(10);
  });

  test('a client engine per connection: 100 engines opened, used and closed leave no fd behind', async () => {
    const server = await engines.server();
    const before = await resources();
    for (let round = 0; round < 4; round++) {
      const clients = Array.from({ length: 25 }, () => engines.client());
      const result = await concurrentRequests({ clients, port: server.port, count: 25, deadline: 20000 });
      expect(result.ok).toBe(25);
      await Promise.all(clients.map((client) => client.close()));
    }
    const after = await resources();
    expect(after.fds - before.fds).toBeLessThanOrEqual(0);
  });
});


