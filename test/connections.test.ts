// Connections: many at once on one engine, what the handshake reports, and how connections and
// engines end (graceful close, destroy, engine.close()), down to the process exiting by itself.
import path from 'node:path';

import { CloseInfo, Connection, Stream } from '../lib';
import { compileLib, CompiledLib } from './helpers/compile-lib';
import { DIST, ExitResult, runToExit, usePeers } from './helpers/processes';
import { ALPN, HOST, clientSsl, next, pattern, readAll, roundTrip, serverSsl, useEngines } from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;

type CodedError = Error & { code?: string };

/** Server behaviour: read every stream to its end and remember what arrived. */
function collectInto(received: Map<bigint, Buffer>) {
  return (connection: Connection): void => {
    connection.on('stream', (stream: Stream) => {
      stream.on('error', () => {});
      void readAll(stream).then((data) => received.set(stream.id, data), () => {});
    });
  };
}

describe('connections', () => {
  const engines = useEngines();

  test('50 concurrent connections from one client engine each echo 64 KiB', async () => {
    const server = await engines.server();
    const client = engines.client();
    const connections = Array.from({ length: 50 }, () => client.connect({ host: HOST, port: server.port, servername: 'localhost' }));
    const replies = await Promise.all(connections.map((connection, i) => roundTrip(connection, pattern(64 * KiB, i))));
    replies.forEach((reply, i) => expect(reply.equals(pattern(64 * KiB, i))).toBe(true));
    expect(server.connections).toHaveLength(50);
  });

  describe('handshake', () => {
    test('both sides report ALPN, servername, resumption and 0-RTT state', async () => {
      const server = await engines.server();
      const client = engines.client();
      const accepted = server.nextConnection();
      const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
      const event = next(connection, 'handshake');
      expect(connection.alpn).toBeUndefined(); // not negotiated yet

      const info = await connection.handshake;
      expect(info).toEqual({ alpn: ALPN, servername: 'localhost', resumed: false, earlyData: 'none' });
      expect(await event).toEqual(info);
      expect(connection.alpn).toBe(ALPN);
      expect(connection.servername).toBe('localhost');
      expect(connection.resumed).toBe(false);
      expect(connection.earlyData).toBe('none');
      expect(connection.closed).toBe(false);

      const serverConnection = await accepted;
      expect(await serverConnection.handshake).toEqual({ alpn: ALPN, servername: 'localhost', resumed: false, earlyData: 'none' });
    });

    test('an IP address as servername is verified but not sent as SNI (RFC 6066): the server sees ""', async () => {
      const server = await engines.server();
      const accepted = server.nextConnection();
      const connection = engines.client().connect({ host: HOST, port: server.port }); // servername defaults to host
      expect((await connection.handshake).servername).toBe(HOST);
      expect((await (await accepted).handshake).servername).toBe('');
    });

    test("the server's ALPN preference wins; connect({ alpn }) offers a single protocol", async () => {
      const server = await engines.server({ ssl: serverSsl('server', { alpn: ['b', 'a'] }) });
      const client = engines.engine({ ssl: clientSsl({ alpn: ['a', 'b'] }) });
      expect((await client.connect({ host: HOST, port: server.port }).handshake).alpn).toBe('b');
      expect((await client.connect({ host: HOST, port: server.port, alpn: 'a' }).handshake).alpn).toBe('a');
    });
  });

  describe('close()', () => {
    test('is graceful: data written before close() arrives, then the peer sees the code and reason', async () => {
      const received = new Map<bigint, Buffer>();
      const { connection, serverConnection } = await engines.pair({ onConnection: collectInto(received) });
      const serverClosed = next<CloseInfo>(serverConnection, 'close');
      const localClosed = next<CloseInfo>(connection, 'close');

      const stream = connection.openStream({ unidirectional: true });
      stream.end(pattern(2 * MiB, 5));
      await connection.close({ code: 42, reason: 'bye' });

      expect(connection.closed).toBe(true);
      expect(await localClosed).toEqual({ code: 42, reason: 'bye', type: 'application', remote: false });
      expect(await serverClosed).toEqual({ code: 42, reason: 'bye', type: 'application', remote: true });
      expect(serverConnection.closed).toBe(true);
      expect(received.get(stream.id)?.equals(pattern(2 * MiB, 5))).toBe(true);
    });

    test('without arguments closes with code 0 and an empty reason', async () => {
      const { connection, serverConnection } = await engines.pair();
      await roundTrip(connection, Buffer.from('confirm'));
      const serverClosed = next<CloseInfo>(serverConnection, 'close');
      await connection.close();
      expect(await serverClosed).toMatchObject({ code: 0, reason: '', remote: true });
      expect((await serverClosed).error).toBeUndefined();
    });

    test('a server can close too; the client sees remote: true', async () => {
      const { connection, serverConnection } = await engines.pair();
      const clientClosed = next<CloseInfo>(connection, 'close');
      await serverConnection.close({ code: 7, reason: 'maintenance' });
      expect(await clientClosed).toMatchObject({ code: 7, reason: 'maintenance', remote: true });
    });

    test('before the handshake completes it closes at once and the handshake promise rejects', async () => {
      const server = await engines.server();
      const connection = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
      await connection.close({ code: 3 });
      await expect(connection.handshake).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });
    });
  });

  describe('destroy()', () => {
    test("ends the connection at once: open streams on both sides are 'aborted' without 'error' (like http2session.destroy()), the peer sees the close", async () => {
      const { connection, serverConnection } = await engines.pair();
      const serverClosed = next<CloseInfo>(serverConnection, 'close');
      const serverStream = next<Stream>(serverConnection, 'stream');
      const stream = connection.openStream();
      stream.write('half a conversation');
      await next(stream, 'data'); // the echo came back: the server knows the stream
      const peerStream = await serverStream;

      const errors: Error[] = [];
      for (const s of [stream, peerStream]) s.on('error', (error) => errors.push(error));
      const aborted = [next(stream, 'aborted'), next(peerStream, 'aborted')];
      const streamsClosed = [next(stream, 'close'), next(peerStream, 'close')];
      const localClosed = next<CloseInfo>(connection, 'close');
      connection.destroy();
      expect(connection.closed).toBe(true);
      expect(await localClosed).toMatchObject({ code: 0, remote: false });
      const info = await serverClosed;
      expect(info.remote).toBe(true);
      expect(info.error).toBeUndefined();
      await Promise.all([...aborted, ...streamsClosed]);
      expect(stream.aborted && peerStream.aborted).toBe(true);
      expect(errors).toEqual([]);
    });

    test("destroy(err) emits 'error' with err, reports it in 'close', and the peer sees application code 1", async () => {
      const { connection, serverConnection } = await engines.pair();
      // One exchange first, so the handshake is confirmed: before that, QUIC carries an
      // application close as the transport error APPLICATION_ERROR (RFC 9000, 10.2.3).
      await roundTrip(connection, Buffer.from('confirm'));
      const serverClosed = next<CloseInfo>(serverConnection, 'close');
      const failure = Object.assign(new Error('application gave up'), { code: 'ERR_APP' });
      const emitted = next<Error>(connection, 'error');
      const localClosed = next<CloseInfo>(connection, 'close');
      connection.destroy(failure);
      expect(await emitted).toBe(failure);
      expect((await localClosed).error).toBe(failure);
      expect(await serverClosed).toMatchObject({ code: 1, type: 'application', remote: true });
    });

    test('before the handshake completes, the handshake promise rejects with ERR_QUIC_CONNECTION_CLOSED', async () => {
      const server = await engines.server();
      const connection = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
      connection.destroy();
      await expect(connection.handshake).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });
    });
  });

  test('a closed connection refuses new work with ERR_QUIC_CONNECTION_CLOSED; close() and destroy() are no-ops', async () => {
    const { connection } = await engines.pair();
    await connection.close();
    expect(() => connection.openStream()).toThrow(expect.objectContaining({ code: 'ERR_QUIC_CONNECTION_CLOSED' }));
    expect(() => connection.openStream({ unidirectional: true })).toThrow(
      expect.objectContaining({ code: 'ERR_QUIC_CONNECTION_CLOSED' }),
    );
    await expect(connection.close({ code: 9 })).resolves.toBeUndefined();
    expect(() => connection.destroy()).not.toThrow();
  });

  test('a closed engine refuses new work with ERR_QUIC_ENGINE_CLOSED', async () => {
    const engine = engines.engine({ ssl: serverSsl() });
    const closing = engine.close();
    expect(engine.close()).toBe(closing); // idempotent
    await closing;
    expect(engine.closed).toBe(true);
    expect(() => engine.connect({ host: HOST, port: 4433, ssl: clientSsl() })).toThrow(
      expect.objectContaining({ code: 'ERR_QUIC_ENGINE_CLOSED' }),
    );
    await expect(engine.listen({ host: HOST, port: 0 })).rejects.toMatchObject({ code: 'ERR_QUIC_ENGINE_CLOSED' });
  });

  describe('engine.close()', () => {
    test("on a client engine closes all its connections (each emits 'close'), and the servers see it", async () => {
      const server = await engines.server();
      const client = engines.client();
      const connections = Array.from({ length: 3 }, () => client.connect({ host: HOST, port: server.port, servername: 'localhost' }));
      await Promise.all(connections.map((connection) => connection.handshake));
      while (server.connections.length < 3) await server.nextConnection();
      await Promise.all(server.connections.map((connection) => connection.handshake));

      const localCloses = connections.map((connection) => next<CloseInfo>(connection, 'close'));
      const remoteCloses = server.connections.map((connection) => next<CloseInfo>(connection, 'close'));
      const engineClosed = next(client, 'close');
      await client.close();
      await engineClosed;
      for (const info of await Promise.all(localCloses)) expect(info).toMatchObject({ remote: false });
      expect(connections.every((connection) => connection.closed)).toBe(true);
      for (const info of await Promise.all(remoteCloses)) expect(info).toMatchObject({ remote: true });
    });

    test('on a server engine closes the accepted connections; clients see remote: true', async () => {
      const { server, connection } = await engines.pair();
      const clientClosed = next<CloseInfo>(connection, 'close');
      await server.engine.close();
      expect(await clientClosed).toMatchObject({ remote: true });
      expect(server.connections[0].closed).toBe(true);
    });

    test('works while connections are still handshaking', async () => {
      const server = await engines.server();
      const client = engines.client();
      const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
      const closed = next<CloseInfo>(connection, 'close');
      await client.close();
      await closed;
      await expect(connection.handshake).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });
    });
  });

  test('an idle connection closes by itself after the smaller idleTimeout of the two sides', async () => {
    const { connection, serverConnection } = await engines.pair({ engine: { idleTimeout: 300 } });
    const [clientInfo, serverInfo] = await Promise.all([
      next<CloseInfo>(connection, 'close'),
      next<CloseInfo>(serverConnection, 'close'),
    ]);
    expect(clientInfo.error).toBeUndefined();
    expect(serverInfo.error).toBeUndefined();
  });

  describe('process lifetime', () => {
    let lib: CompiledLib;
    beforeAll(() => {
      lib = compileLib();
    });
    afterAll(() => lib?.remove());

    /** Runs test/fixtures/child-engines.js; resolves with its exit code and output, or rejects if it hangs. */
    function runChild(mode: string, nodeFlags: string[] = []): Promise<ExitResult> {
      // A healthy child is done in well under a second.
      return runToExit(process.execPath, [...nodeFlags, path.join(__dirname, 'fixtures', 'child-engines.js'), lib.dir, mode], lib.env, 15000);
    }

    test('a process that closes its engines after an echo exits by itself with code 0', async () => {
      const result = await runChild('echo');
      expect(result).toEqual({ code: 0, stdout: 'echo done\n', stderr: '' });
    });

    test('a process that closes its engines mid-transfer exits by itself with code 0', async () => {
      const result = await runChild('abrupt');
      expect(result).toEqual({ code: 0, stdout: 'abrupt done\n', stderr: '' });
    });

    test('close() of an engine that never bound a socket resolves (the process does not just stop)', async () => {
      const result = await runChild('unbound');
      expect(result).toEqual({ code: 0, stdout: 'unbound done\n', stderr: '' });
    });

    // Found by issue 10: a process that never closed its engines used to die with SIGSEGV at exit
    // (the engine's loop handle ran during the environment's teardown).
    test('an engine that is never closed does not stop the process from exiting with its own code', async () => {
      expect(await runChild('abandoned')).toEqual({ code: 3, stdout: 'abandoned done\n', stderr: '' });
    });

    test('process.exit() with open engines and a live connection exits with its code', async () => {
      expect(await runChild('exit')).toEqual({ code: 4, stdout: 'exit done\n', stderr: '' });
    });

    test('a Worker that ends without closing its engines leaves the main thread running', async () => {
      expect(await runChild('worker')).toEqual({ code: 0, stdout: 'worker done\n', stderr: '' });
    });

    test('a closed engine can be garbage-collected (no native reference keeps it alive)', async () => {
      const result = await runChild('gc', ['--expose-gc']);
      expect(result).toEqual({ code: 0, stdout: 'gc done\n', stderr: '' });
    });

    test('engines unref()ed (one before listen()) with a live connection between them let the process exit by itself', async () => {
      expect(await runChild('unref')).toEqual({ code: 0, stdout: 'unref done\n', stderr: '' });
    });

    describe('a bound engine keeps the process alive, like a net.Server', () => {
      const peers = usePeers();

      /** Starts a child-engines.js mode, waits for its "done", then asserts it is still running a while later (it is killed after the test). */
      async function expectKeptAlive(mode: string): Promise<void> {
        const child = peers.start('child-engines.js', [DIST, mode]);
        await child.waitFor((report) => report.line === `${mode} done`, `${mode} done`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect({ exited: child.exited, stderr: child.stderr }).toEqual({ exited: false, stderr: '' });
      }

      test('a listening engine', () => expectKeptAlive('listening'));
      test('a client engine bound by connect() (beside an unref()ed server engine)', () => expectKeptAlive('connected'));
      test('an engine unref()ed and then ref()ed again', () => expectKeptAlive('reref'));
    });
  });
});

describe('engine.ref() / unref() and process.getActiveResourcesInfo()', () => {
  const engines = useEngines();
  const entries = (): number => process.getActiveResourcesInfo().filter((type) => type === 'UDPWrap').length;

  test('a bound engine is listed (as a UDPWrap, like a node:dgram socket) while ref()ed; not before it is bound, nor after close()', async () => {
    const before = entries();
    const server = engines.engine({ ssl: serverSsl() });
    expect(entries()).toBe(before);
    await server.listen({ host: HOST, port: 0 });
    expect(entries()).toBe(before + 1);
    expect(server.unref()).toBe(server);
    expect(server.unref()).toBe(server);
    expect(entries()).toBe(before);
    expect(server.ref()).toBe(server); // one ref() undoes any number of unref()s
    expect(entries()).toBe(before + 1);
    expect(server.ref()).toBe(server);
    expect(entries()).toBe(before + 1);

    const client = engines.client().unref(); // remembered until connect() binds the socket
    const connection = client.connect({ host: HOST, port: server.address().port, servername: 'localhost' });
    expect(entries()).toBe(before + 1);
    client.ref();
    expect(entries()).toBe(before + 2);
    await connection.handshake;

    await Promise.all([client.close(), server.close()]);
    expect(entries()).toBe(before);
    expect(server.unref().ref()).toBe(server); // harmless after close()
    expect(entries()).toBe(before);
  });
});

describe('engine.address()', () => {
  const engines = useEngines();

  test('a client engine reports the address its first connect() bound, and throws before that', async () => {
    const server = await engines.server();
    const client = engines.engine();
    expect(() => client.address()).toThrow(expect.objectContaining({ code: 'ERR_QUIC_NOT_BOUND' }));
    const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost', ssl: clientSsl() });
    await connection.handshake;
    const bound = client.address();
    // Dual-stack, so the same engine can reach IPv6 servers too.
    expect(bound).toMatchObject({ address: '::', family: 'IPv6' });
    expect(bound.port).toBeGreaterThan(0);
    expect(server.engine.address()).toMatchObject({ address: HOST, port: server.port, family: 'IPv4' });
  });
});
