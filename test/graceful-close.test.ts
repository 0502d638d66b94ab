// connection.close() is graceful like http2session.close(): no new streams, open streams finish on
// their own (bounded by a timeout), nothing that ended cleanly emits 'error', and CONNECTION_CLOSE
// waits until the peer acknowledged everything sent, FINs and HTTP/3 HEADERS included.
import { CloseInfo, CodedError, Connection, Engine, Http3Server, request, SslConfig, Stream } from '../lib';
import { HOST, next, pattern, pem, readAll, roundTrip, useEngines } from './helpers';
import { RelayedDatagram, UdpRelay } from './helpers/udp-relay';

describe('graceful close', () => {
  const engines = useEngines();
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  test('open streams finish on their own before CONNECTION_CLOSE; no new streams meanwhile', async () => {
    // The server answers each stream slowly, in four pieces, after the client ended its side.
    const server = await engines.server({
      onConnection: (connection) =>
        connection.on('stream', (stream: Stream) => {
          stream.resume();
          stream.once('end', () => {
            let piece = 0;
            const timer = setInterval(() => {
              stream.write(pattern(64 * 1024, 5, piece * 64 * 1024));
              if (++piece === 4) {
                clearInterval(timer);
                stream.end();
              }
            }, 50);
          });
        }),
    });
    const connection = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    await connection.handshake;
    const errors: Error[] = [];
    const streams = [connection.openStream(), connection.openStream()];
    for (const stream of streams) {
      stream.on('error', (error) => errors.push(error));
      stream.end('go');
    }
    const answers = streams.map(readAll);
    const started = next(streams[0], 'data');
    const serverConnection = server.connections[0]; // arrived before the client's handshake completed
    const serverClosed = next<CloseInfo>(serverConnection, 'close');

    // Once the server has started answering, close: the answers still arrive in full.
    await started;
    const closed = connection.close();
    expect(connection.closing).toBe(true);
    expect(() => connection.openStream()).toThrow(expect.objectContaining({ code: 'ERR_QUIC_CONNECTION_CLOSING' }));
    for (const answer of await Promise.all(answers)) expect(answer.equals(pattern(256 * 1024, 5))).toBe(true);
    await closed;
    expect(await serverClosed).toMatchObject({ remote: true, code: 0 });
    expect(errors).toEqual([]);
    expect(streams.every((stream) => !stream.aborted)).toBe(true);
  });

  test("streams still open at the timeout are 'aborted' on both sides, never 'error'", async () => {
    const serverStreams: Stream[] = [];
    const server = await engines.server({
      onConnection: (connection) => connection.on('stream', (stream: Stream) => serverStreams.push(stream.resume())),
    });
    const connection = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    const idle = connection.openStream();
    idle.write('hello, and then nothing');
    const serverConnection = await server.nextConnection();
    const serverClosed = next<CloseInfo>(serverConnection, 'close');
    while (serverStreams.length === 0) await next(serverConnection, 'stream');
    const peer = serverStreams[0];

    const errors: Error[] = [];
    for (const stream of [idle, peer]) stream.on('error', (error) => errors.push(error));
    const ended = [idle, peer].map((stream) => Promise.all([next(stream, 'aborted'), next(stream, 'close')]));
    await connection.close({ timeout: 200 });
    await Promise.all(ended);
    expect(await serverClosed).toMatchObject({ remote: true, code: 0 });
    expect(idle.aborted && peer.aborted).toBe(true);
    expect(errors).toEqual([]);
  });

  test("a stream that ended cleanly before the peer's close never emits 'error'", async () => {
    const { connection, serverConnection } = await engines.pair();
    const stream = connection.openStream();
    const errors: Error[] = [];
    stream.on('error', (error) => errors.push(error));
    stream.end('bye');
    expect((await readAll(stream)).toString()).toBe('bye');
    await serverConnection.close();
    await next(connection, 'close');
    expect(errors).toEqual([]);
    expect(stream.aborted).toBe(false);
  });

  /** A relay that drops the first server-to-client datagram after `arm()` was called. */
  async function dropOneRelay(targetPort: number): Promise<{ port: number; arm: () => void; dropped: () => number }> {
    const relay = await UdpRelay.create({ targetPort });
    cleanups.push(() => relay.close());
    let armed = false;
    let dropped = 0;
    relay.tap((datagram: RelayedDatagram) => {
      if (!armed || datagram.direction !== 'toClient') return undefined;
      armed = false;
      dropped++;
      return 'drop';
    });
    return { port: relay.port, arm: () => (armed = true), dropped: () => dropped };
  }

  test('raw streams: a FIN-only reply lost once is retransmitted before CONNECTION_CLOSE', async () => {
    let relay!: Awaited<ReturnType<typeof dropOneRelay>>;
    const server = await engines.server({
      onConnection: (connection) =>
        connection.on('stream', (stream: Stream) => {
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.once('end', () => {
            if (Buffer.concat(chunks).toString() !== 'anything?') {
              stream.end(Buffer.concat(chunks)); // the warm-up echo
              return;
            }
            // An empty reply (a FIN and nothing else) and a close in the same turn; the
            // datagram carrying the FIN is dropped.
            relay.arm();
            stream.end();
            void connection.close();
          });
        }),
    });
    relay = await dropOneRelay(server.port);
    const connection = engines.client().connect({ host: HOST, port: relay.port, servername: 'localhost' });
    // Settle the handshake first (tickets, HANDSHAKE_DONE, acknowledgements), so that what is
    // dropped is the FIN alone and nothing else keeps the server waiting.
    expect((await roundTrip(connection, Buffer.from('warm-up'))).toString()).toBe('warm-up');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stream = connection.openStream();
    const errors: Error[] = [];
    stream.on('error', (error) => errors.push(error));
    stream.end('anything?');
    const closed = next<CloseInfo>(connection, 'close');
    expect((await readAll(stream)).length).toBe(0);
    expect(await closed).toMatchObject({ remote: true, code: 0 });
    expect(relay.dropped()).toBe(1);
    expect(errors).toEqual([]);
  });

  test('HTTP/3: an empty-body response lost once still arrives; the close follows it', async () => {
    let relay!: Awaited<ReturnType<typeof dropOneRelay>>;
    const h3 = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem') }) }, (req, res) => {
      if (req.path === '/warm-up') {
        res.end('warm');
        return;
      }
      relay.arm();
      res.writeHead(204, { 'x-answer': 'nothing' });
      res.end();
      void req.connection.close();
    });
    cleanups.push(() => h3.close());
    const { port } = await h3.listen({ host: HOST, port: 0 });
    relay = await dropOneRelay(port);
    const client = new Engine();
    cleanups.push(() => client.close());
    const connection: Connection = client.connect({
      host: HOST,
      port: relay.port,
      servername: 'localhost',
      ssl: new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') }),
    });
    // Settled first, so that what is dropped is the response alone.
    const warm = await request(connection, { path: '/warm-up' });
    expect((await readAll(warm.body as Stream)).toString()).toBe('warm');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = next<CloseInfo>(connection, 'close');
    const response = await request(connection, { path: '/' });
    expect(response.status).toBe(204);
    expect(response.headers['x-answer']).toBe('nothing');
    expect((await readAll(response.body as Stream)).length).toBe(0);
    const info = await closed;
    expect(info).toMatchObject({ remote: true, code: 0x100 });
    expect(info.error).toBeUndefined();
    expect(relay.dropped()).toBe(1);
  });

  test('close() during the handshake closes at once; the handshake rejects', async () => {
    const server = await engines.server();
    const connection = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    await connection.close();
    await expect(connection.handshake).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' } as Partial<CodedError>);
  });
});
