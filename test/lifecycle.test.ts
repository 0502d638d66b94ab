// Lifecycle faults: a peer process killed mid-transfer, a server restarted on the same port with
// the same or other ticket keys, engine.close() in the middle of handshakes and transfers, and
// application event handlers that throw.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';

import { CloseInfo, Connection, Engine, Stream } from '../lib';
import { HOST, next, pattern, readAll, Server, useEngines } from './helpers';
import { DIST, FIXTURES, startServerPeer, usePeers } from './helpers/processes';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Byte i of a test/fixtures/peer.js upload or "source" stream. */
function peerPattern(offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let k = 0; k < length; k++) out[k] = ((offset + k) * 7 + 3) & 0xff;
  return out;
}

/** Checks a stream's bytes against peerPattern as they come; counts them. */
function checkPeerPattern(stream: Stream): { received: () => number; mismatch: () => number | undefined } {
  let received = 0;
  let mismatch: number | undefined;
  stream.on('data', (chunk: Buffer) => {
    if (mismatch === undefined && !chunk.equals(peerPattern(received, chunk.length))) mismatch = received;
    received += chunk.length;
  });
  return { received: () => received, mismatch: () => mismatch };
}

/** Resolves once `condition()` holds, checking every 10 ms; rejects after `ms` (a hang guard). */
async function until(condition: () => boolean, what: string, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A request to a peer.js server: sends `body`, resolves with its JSON answer. */
async function ask(connection: Connection, body: Buffer): Promise<any> {
  const stream = connection.openStream();
  const answer = readAll(stream);
  stream.end(body);
  return JSON.parse((await answer).toString());
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const errorOf = (stream: Stream): Promise<any> => new Promise((resolve) => stream.once('error', resolve));

describe('lifecycle', () => {
  const engines = useEngines();
  const peers = usePeers();

  describe('a peer process killed mid-transfer', () => {
    const IDLE = 1500;

    test("client killed: the server's stream errors with ERR_QUIC_CONNECTION_CLOSED, the connection closes after the idle timeout", async () => {
      let check: ReturnType<typeof checkPeerPattern> | undefined;
      const streamFailed: Array<Promise<any>> = [];
      const server = await engines.server({
        engine: { idleTimeout: IDLE },
        onConnection: (connection) =>
          connection.on('stream', (stream: Stream) => {
            check = checkPeerPattern(stream);
            streamFailed.push(errorOf(stream));
            stream.pipe(stream); // the echo keeps the other direction busy too
          }),
      });
      const accepted = server.nextConnection();
      const child = peers.start('peer.js', [DIST, 'client', JSON.stringify({ port: server.port })]);
      const connection = await accepted;
      const closed = server.closed(connection);
      await until(() => (check?.received() ?? 0) >= 2 * 1024 * 1024, '2 MiB from the client');

      await child.kill('SIGKILL');
      const killedAt = Date.now();
      const error = await streamFailed[0];
      const info: CloseInfo = await closed;

      expect(error).toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });
      expect(info).toMatchObject({ remote: false, code: 0 });
      expect(info.error).toBeUndefined(); // an idle timeout is not an error of this side
      // It did wait for the idle timeout (a lower bound only: the timer runs from the last packet).
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual(IDLE / 2);
      expect(check!.mismatch()).toBeUndefined(); // every byte before the kill was right
      // The server engine is unharmed.
      const fresh = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
      const stream = fresh.openStream();
      const echoed = readAll(stream);
      stream.end(peerPattern(0, 10000));
      expect((await echoed).equals(peerPattern(0, 10000))).toBe(true);
    });

    test("server killed: the client's stream errors with ERR_QUIC_CONNECTION_CLOSED, the connection closes after the idle timeout", async () => {
      const { peer, port } = await startServerPeer(peers, {});
      const connection = engines.client({ idleTimeout: IDLE }).connect({ host: HOST, port, servername: 'localhost' });
      const closed = next<CloseInfo>(connection, 'close');
      const stream = connection.openStream();
      const check = checkPeerPattern(stream);
      const failed = errorOf(stream);
      stream.end('source 0'); // the server sends without end
      await until(() => check.received() >= 2 * 1024 * 1024, '2 MiB from the server');

      await peer.kill('SIGKILL');
      const error = await failed;
      const info = await closed;

      expect(error).toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });
      expect(info).toMatchObject({ remote: false, code: 0 });
      expect(info.error).toBeUndefined();
      expect(check.mismatch()).toBeUndefined();
      expect(connection.closed).toBe(true);
    });
  });

  describe('server restart on the same port', () => {
    test('same ticket keys: clients resume (0-RTT data delivered); other keys: full handshake; nothing fails', async () => {
      const keys = randomBytes(48).toString('hex');
      const first = await startServerPeer(peers, { ticketKeys: keys });
      const port = first.port;
      const client = engines.client({ idleTimeout: 2000 });
      const tickets = new Map<Connection, Buffer[]>();
      const keep = (connection: Connection): Connection => {
        tickets.set(connection, []);
        connection.on('ticket', (ticket: Buffer) => tickets.get(connection)!.push(ticket));
        connection.on('error', () => {});
        return connection;
      };
      /** The newest ticket `connection` received (waits for one). */
      const ticketOf = async (connection: Connection): Promise<Buffer> => {
        await until(() => tickets.get(connection)!.length > 0, 'a ticket');
        return tickets.get(connection)!.at(-1)!;
      };

      const old = keep(client.connect({ host: HOST, port, servername: 'localhost' }));
      expect((await ask(old, Buffer.from('hello'))).pid).toBe(first.peer.pid);
      const firstTicket = await ticketOf(old);

      // 1. The server crashes and comes back with the same keys.
      await first.peer.kill('SIGKILL');
      const second = await startServerPeer(peers, { ticketKeys: keys, port });
      expect(second.port).toBe(port);

      // The connection to the dead process cannot continue (its state died with it): a request
      // on it fails with a clear code once the idle timeout passes.
      const orphan = old.openStream();
      const orphanFailed = errorOf(orphan);
      orphan.end('anyone there?');

      const body = randomBytes(20000);
      const resumed = keep(client.connect({ host: HOST, port, servername: 'localhost', ticket: firstTicket }));
      const answer = ask(resumed, body); // same tick: 0-RTT
      const info = await resumed.handshake;
      expect(info.resumed).toBe(true);
      // A restarted server never saw the ClientHellos sent before it started: for its first
      // antiReplayWindow it refuses 0-RTT on older tickets (README, "0-RTT and replay"), and the
      // early bytes are resent over 1-RTT. Every byte arrives.
      expect(info.earlyData).toBe('rejected');
      expect(await answer).toMatchObject({
        pid: second.peer.pid,
        early: info.earlyData === 'accepted',
        length: body.length,
        sha256: sha256(body),
      });

      // A ticket from the restarted server resumes with 0-RTT accepted.
      const again = keep(client.connect({ host: HOST, port, servername: 'localhost', ticket: await ticketOf(resumed) }));
      const againAnswer = ask(again, body);
      expect(await again.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
      expect(await againAnswer).toMatchObject({ pid: second.peer.pid, early: true, length: body.length, sha256: sha256(body) });

      expect(await orphanFailed).toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });

      // 2. A graceful restart with other keys: the old ticket cannot resume; full handshake,
      // the 0-RTT attempt is rejected and its bytes resent; nothing fails.
      const secondTicket = await ticketOf(again);
      expect(await second.peer.stop()).toBe(0);
      const third = await startServerPeer(peers, { ticketKeys: randomBytes(48).toString('hex'), port });
      const foreign = keep(client.connect({ host: HOST, port, servername: 'localhost', ticket: secondTicket }));
      const foreignAnswer = ask(foreign, body);
      expect(await foreign.handshake).toMatchObject({ resumed: false, earlyData: 'rejected' });
      expect(await foreignAnswer).toMatchObject({ pid: third.peer.pid, early: false, resumed: false, length: body.length, sha256: sha256(body) });

      // And the clients of the new server resume from its tickets as usual.
      const last = keep(client.connect({ host: HOST, port, servername: 'localhost', ticket: await ticketOf(foreign) }));
      const lastAnswer = ask(last, body);
      expect(await last.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
      expect(await lastAnswer).toMatchObject({ pid: third.peer.pid, early: true, sha256: sha256(body) });
    });
  });

  describe('engine.close() in the middle of things', () => {
    const CONNECTIONS = 40;

    /** Settles every handshake and 'close' of `connections`; returns how they ended. */
    async function outcomes(connections: Connection[]): Promise<{ handshakes: Record<string, number>; closes: CloseInfo[] }> {
      const handshakes: Record<string, number> = {};
      const closes = await Promise.all(
        connections.map(async (connection) => {
          const result = await connection.handshake.then(
            () => 'completed',
            (error) => `rejected ${error.code}`,
          );
          handshakes[result] = (handshakes[result] ?? 0) + 1;
          return closeInfo.get(connection)!;
        }),
      );
      return { handshakes, closes };
    }
    const closeInfo = new WeakMap<Connection, Promise<CloseInfo>>();

    /**
     * Starts CONNECTIONS connections, a few per loop turn, and calls `close` once the server has
     * completed a few handshakes: by then some connections are established, some are half-way
     * and some have not reached the server yet.
     */
    async function connectAndClose(server: Server, client: Engine, close: () => Promise<void>): Promise<Connection[]> {
      const connections: Connection[] = [];
      let completed = 0;
      server.engine.on('connection', (connection: Connection) => connection.handshake.then(() => completed++, () => {}));
      for (let i = 0; i < CONNECTIONS; i++) {
        const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
        connection.on('error', () => {});
        closeInfo.set(connection, next<CloseInfo>(connection, 'close'));
        connections.push(connection);
        if (i % 4 === 3) await new Promise((resolve) => setImmediate(resolve));
        if (completed >= 3) break;
      }
      await until(() => completed >= 3, 'three completed handshakes');
      await close();
      return connections;
    }

    test('server engine closed while handshakes are in flight: every client connection settles with a coded outcome', async () => {
      const server = await engines.server({ engine: { handshakeTimeout: 2000 } });
      const client = engines.client({ handshakeTimeout: 2000 });
      const connections = await connectAndClose(server, client, () => server.engine.close());
      const { handshakes, closes } = await outcomes(connections);

      const total = Object.values(handshakes).reduce((a, b) => a + b, 0);
      expect(total).toBe(connections.length);
      // Only clean outcomes: completed (then closed by the server), or rejected with a code
      // (ECONNREFUSED: a handshake still sending once the server's port had closed).
      for (const outcome of Object.keys(handshakes)) {
        expect(outcome).toMatch(/^(completed|rejected (ERR_QUIC_(CONNECTION_CLOSED|HANDSHAKE_TIMEOUT)|ECONNREFUSED))$/);
      }
      expect(closes.every((info) => info !== undefined)).toBe(true);
      expect(connections.every((connection) => connection.closed)).toBe(true);
      // The client engine still works: another server, another connection.
      const other = await engines.server();
      const connection = client.connect({ host: HOST, port: other.port, servername: 'localhost' });
      const stream = connection.openStream();
      const echoed = readAll(stream);
      stream.end(pattern(5000, 1));
      expect((await echoed).equals(pattern(5000, 1))).toBe(true);
    });

    test('client engine closed while handshakes are in flight: handshakes reject with ERR_QUIC_CONNECTION_CLOSED, the server keeps serving', async () => {
      const server = await engines.server({ engine: { handshakeTimeout: 2000 } });
      const client = engines.client();
      const connections = await connectAndClose(server, client, () => client.close());
      const { handshakes } = await outcomes(connections);
      expect(Object.values(handshakes).reduce((a, b) => a + b, 0)).toBe(connections.length);
      for (const outcome of Object.keys(handshakes)) expect(outcome).toMatch(/^(completed|rejected ERR_QUIC_CONNECTION_CLOSED)$/);
      // Every server-side connection ends (CONNECTION_CLOSE, or its own handshake timeout).
      await Promise.all(server.connections.map((connection) => server.closed(connection)));
      const fresh = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
      const stream = fresh.openStream();
      const echoed = readAll(stream);
      stream.end(pattern(5000, 2));
      expect((await echoed).equals(pattern(5000, 2))).toBe(true);
    });

    test.each(['server', 'client'] as const)(
      "%s engine closed during transfers: streams on both sides are 'aborted' without 'error' (a clean close, like http2session.destroy()), both engines close",
      async (which) => {
        const serverStreams: Array<Promise<any>> = [];
        const server = await engines.server({
          onConnection: (connection) =>
            connection.on('stream', (stream: Stream) => {
              serverStreams.push(new Promise((resolve) => stream.once('error', resolve).once('close', () => resolve(stream.aborted ? 'aborted' : 'closed'))));
              stream.pipe(stream);
            }),
        });
        const client = engines.client();
        const clientStreams: Array<Promise<any>> = [];
        let echoed = 0;
        const connections: Connection[] = [];
        const closes: Array<Promise<CloseInfo>> = [];
        for (let c = 0; c < 4; c++) {
          const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
          connection.on('error', () => {});
          connections.push(connection);
          closes.push(next<CloseInfo>(connection, 'close'));
          for (let s = 0; s < 3; s++) {
            const stream = connection.openStream();
            stream.on('data', (chunk: Buffer) => (echoed += chunk.length));
            clientStreams.push(new Promise((resolve) => stream.once('error', resolve).once('end', () => resolve('ended')).once('close', () => resolve(stream.aborted ? 'aborted' : 'closed'))));
            stream.write(randomBytes(8 * 1024 * 1024)); // more than can be echoed before the close
          }
        }
        await until(() => echoed >= 1024 * 1024, 'transfers under way');
        await (which === 'server' ? server.engine : client).close();

        const clientResults = await Promise.all(clientStreams);
        expect(clientResults).toEqual(clientStreams.map(() => 'aborted'));
        const infos = await Promise.all(closes);
        if (which === 'server') {
          // The server said goodbye: CONNECTION_CLOSE arrived (no idle wait), as a clean close.
          for (const info of infos) expect(info).toMatchObject({ remote: true, code: 0 });
        }
        const serverResults = await Promise.all(serverStreams);
        expect(serverResults).toEqual(serverStreams.map(() => 'aborted'));
        await Promise.all(server.connections.map((connection) => server.closed(connection)));
        // The other engine still closes cleanly (useEngines closes it; do it here to see it resolve).
        await (which === 'server' ? client : server.engine).close();
      },
    );
  });

  test.each([
    ['', []],
    [', with async hooks enabled', ['--require', path.join(FIXTURES, 'enable-async-hooks.js')]],
  ])('application event handlers that throw do not corrupt native state (in a child process with an uncaughtException handler%s)', async (_with, flags) => {
    const child = spawn(process.execPath, [...flags, path.join(FIXTURES, 'throwing-handlers.js'), DIST], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    // A hang guard, not a timing assertion: the child normally finishes in a few seconds.
    const guard = setTimeout(() => child.kill('SIGKILL'), 50000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(guard);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({
      roundTrips: 21,
      resumed: 10,
      early: 10,
      bigTransfers: 1,
      streamsBeyondLimit: 40,
      failedWith: 'ERR_QUIC_ALPN_MISMATCH',
      closeError: 'ERR_QUIC_ALPN_MISMATCH',
      allCaught: true,
    });
    // Every throw became exactly one uncaughtException, and every kind of handler threw.
    expect(report.caught).toBe(report.throws);
    expect(report.thrown).toEqual(
      [
        'client close',
        'client data',
        'client data (every chunk)',
        'client end',
        'client end (40 streams)',
        'client error',
        'client handshake',
        'client ticket',
        'server close',
        'server connection',
        'server data',
        'server data (every chunk)',
        'server end',
        'server engine close',
        'server handshake',
        'server stream',
        'server stream (next tick)',
      ].sort(),
    );
  });
});

