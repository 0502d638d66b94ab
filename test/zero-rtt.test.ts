// 0-RTT: streams opened in the same tick as connect({ ticket }) ride the first flight; the server
// marks them early; when 0-RTT is refused every byte still arrives over 1-RTT; a replayed first
// flight gets its early data refused.
import { randomBytes } from 'node:crypto';

import { Connection, Engine, HandshakeInfo, SslConfig, Stream } from '../lib';
import { HOST, pem, readAll } from './helpers/index';
import { clientEngine, exchange, fetchTicket, payload, received, TestServer, useCleanup } from './helpers/ticket-harness';
import { startTicketServerProcess } from './helpers/ticket-server-process';
import { UdpRelay } from './helpers/udp-relay';

describe('0-RTT accepted', () => {
  const track = useCleanup();

  test('a resumed connection sends its first streams as 0-RTT and the server sees stream.early', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    const before = server.received.length;

    const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost', ticket });
    let rejected = false;
    connection.on('earlyDataRejected', () => (rejected = true));
    const first = Buffer.from('early bytes, first stream');
    const second = payload(5000, 4);
    const streams = [connection.openStream(), connection.openStream()];
    const answers = streams.map(readAll);
    streams[0].end(first);
    streams[1].end(second);
    const replies = (await Promise.all(answers)).map((reply) => JSON.parse(reply.toString()));
    const info = await connection.handshake;
    await connection.close();

    expect(info).toMatchObject({ resumed: true, earlyData: 'accepted' });
    expect(connection.resumed).toBe(true);
    expect(connection.earlyData).toBe('accepted');
    expect(rejected).toBe(false);
    expect(replies).toEqual([received(first, true), received(second, true)]);
    expect(server.received.slice(before)).toEqual(expect.arrayContaining([received(first, true), received(second, true)]));
  });

  test('server side: connection.resumed is true while 0-RTT streams arrive, before the handshake completes', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    const seen: Array<{ early: boolean; resumed: boolean; handshakeDone: boolean }> = [];
    server.engine.on('connection', (serverConnection: Connection) => {
      let handshakeDone = false;
      serverConnection.on('handshake', () => (handshakeDone = true));
      serverConnection.on('stream', (stream: Stream) => seen.push({ early: stream.early, resumed: serverConnection.resumed, handshakeDone }));
    });
    const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost', ticket });
    const stream = connection.openStream();
    const answer = readAll(stream);
    stream.end('early');
    await answer;
    expect(await connection.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
    expect(seen).toEqual([{ early: true, resumed: true, handshakeDone: false }]);
  });

  test('a stream opened after the handshake is not early', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost', ticket });
    await connection.handshake;
    const stream = connection.openStream();
    const answer = readAll(stream);
    stream.end('after the handshake');
    expect(JSON.parse((await answer).toString())).toEqual(received(Buffer.from('after the handshake'), false));
    await connection.close();
  });
});

describe('0-RTT refused: every byte is delivered over 1-RTT', () => {
  const track = useCleanup();

  test('a ticket from a server without earlyData is resumed without attempting 0-RTT', async () => {
    const server = track(await TestServer.start({ earlyData: false }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    const data = Buffer.from('sent after the handshake, not as 0-RTT');
    const result = await exchange(client, server.port, data, { ticket });
    expect(result.resumed).toBe(true);
    expect(result.earlyData).toBe('none');
    expect(result.earlyDataRejected).toBe(0);
    expect(result.reply).toEqual(received(data, false));
  });

  test('a server with another ticket key: full handshake, 200 kB of early bytes intact', async () => {
    const issuer = track(await TestServer.start({ earlyData: true, ticketKeys: randomBytes(48) }));
    const stranger = track(await TestServer.start({ earlyData: true, ticketKeys: randomBytes(48) }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, issuer.port);
    const data = payload(200 * 1024, 5);
    const result = await exchange(client, stranger.port, data, { ticket });
    expect(result.resumed).toBe(false);
    expect(result.info.resumed).toBe(false);
    expect(result.earlyData).toBe('rejected');
    expect(result.earlyDataRejected).toBe(1);
    expect(result.ticketRejected).toEqual([]);
    expect(result.reply).toEqual(received(data, false));
  });

  test('a server with earlyData: false resumes but refuses 0-RTT; bytes intact, earlyDataRejected emitted', async () => {
    const ticketKeys = randomBytes(48);
    const issuer = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const refuser = track(await TestServer.start({ earlyData: false, ticketKeys }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, issuer.port);
    const data = payload(100_000, 6);
    const result = await exchange(client, refuser.port, data, { ticket });
    expect(result.resumed).toBe(true);
    expect(result.earlyData).toBe('rejected');
    expect(result.info.earlyData).toBe('rejected');
    expect(result.earlyDataRejected).toBe(1);
    expect(result.reply).toEqual(received(data, false));
    expect(refuser.received).toEqual([received(data, false)]);
  });

  test('a server whose transport limits changed since the ticket: resumed, 0-RTT refused, bytes intact', async () => {
    const ticketKeys = randomBytes(48);
    const issuer = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const changed = track(await TestServer.start({ earlyData: true, ticketKeys }, { streamWindow: 64 * 1024, maxStreamsBidi: 4 }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, issuer.port);
    const data = payload(300_000, 7);
    const result = await exchange(client, changed.port, data, { ticket });
    // The client's remembered limits may exceed today's: its early data is refused, not trusted.
    expect(result.resumed).toBe(true);
    expect(result.earlyData).toBe('rejected');
    expect(result.earlyDataRejected).toBe(1);
    expect(result.reply).toEqual(received(data, false));
  });

  test('the same Stream objects keep working after the rejection', async () => {
    const issuer = track(await TestServer.start({ earlyData: true }));
    const stranger = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, issuer.port);
    const connection: Connection = client.connect({ host: HOST, port: stranger.port, servername: 'localhost', ticket });
    const stream: Stream = connection.openStream();
    const answer = readAll(stream);
    stream.write('written in 0-RTT, ');
    await new Promise<void>((resolve) => connection.once('earlyDataRejected', resolve));
    stream.end('and after the rejection');
    expect(JSON.parse((await answer).toString())).toEqual(received(Buffer.from('written in 0-RTT, and after the rejection'), false));
    await connection.close();
  });
});

describe('replay protection', () => {
  const track = useCleanup();

  test('a replayed first flight does not deliver the early data a second time', async () => {
    const ticketKeys = randomBytes(48);
    const server = track(await TestServer.start({ earlyData: true, ticketKeys }));
    // Control: a server with the same key in another process (so with another replay store),
    // started before the ticket is issued, so the recorded flight is a valid 0-RTT flight for it.
    // Proves the replay is real.
    const control = track(await startTicketServerProcess(ticketKeys));
    const relay = track(await UdpRelay.create({ targetPort: server.port, seed: 7 }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);

    const firstFlight = relay.captureFirstFlight();
    const secret = Buffer.from(`transfer ${randomBytes(8).toString('hex')}`);
    const original = await exchange(client, relay.port, secret, { ticket, waitForTicket: false });
    expect(original.earlyData).toBe('accepted');
    expect(original.reply).toEqual(received(secret, true));
    const flight = await firstFlight;
    expect(flight.length).toBeGreaterThanOrEqual(1);
    // The original connection is gone on the server too, so the replay meets a fresh endpoint state.
    await Promise.all(server.connections.map((connection) => (connection.closed ? undefined : new Promise((resolve) => connection.once('close', resolve)))));

    const connectionsBefore = server.connections.length;
    const receivedBefore = server.received.length;
    const openedBefore = server.opened.length;
    const replay = await relay.replay(flight);
    await replay.waitForResponses(1); // the server took the replayed Initial as a new connection
    // A generous pause for the rest of the flight (already in the socket buffer) to be processed.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.connections.length).toBe(connectionsBefore + 1);
    expect(server.received.slice(receivedBefore)).not.toContainEqual(received(secret, true));
    expect(server.opened.slice(openedBefore)).not.toContain(true); // no early stream at all

    const controlReplay = await relay.replay(flight, { targetPort: control.port });
    await control.waitForReceived(1);
    expect(control.received).toEqual([received(secret, true)]);
    await controlReplay.close();
  });
});

describe('a client that does not want 0-RTT', () => {
  test('resumes without announcing early data, and both sides agree on earlyData "none"', async () => {
    const engines = [] as Engine[];
    try {
      const server = new Engine({ ssl: new SslConfig({ alpn: ['quicket-test'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true }) });
      engines.push(server);
      const serverSide: string[] = [];
      server.on('connection', (connection: Connection) => {
        connection.on('handshake', (info: HandshakeInfo) => serverSide.push(info.earlyData));
        connection.on('stream', (stream: Stream) => stream.pipe(stream));
      });
      const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
      const client = new Engine();
      engines.push(client);
      const ssl = new SslConfig({ alpn: ['quicket-test'], ca: pem('ca.pem'), earlyData: false });
      const first = client.connect({ host: '127.0.0.1', port, servername: 'localhost', ssl });
      const ticket = await new Promise<Buffer>((resolve) => first.once('ticket', resolve));
      await first.close();
      const second = client.connect({ host: '127.0.0.1', port, servername: 'localhost', ssl, ticket });
      const stream = second.openStream();
      stream.end('late but safe');
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('late but safe');
      expect({ resumed: second.resumed, earlyData: second.earlyData }).toEqual({ resumed: true, earlyData: 'none' });
      expect(serverSide).toEqual(['none', 'none']);
      await second.close();
    } finally {
      await Promise.all(engines.map((engine) => engine.close()));
    }
  });
});
