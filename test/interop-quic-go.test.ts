// Interop with quic-go (Go's crypto/tls, an independent QUIC and TLS 1.3 stack), both directions:
// raw echo on ALPN 'echo', 1 KiB and 1 MiB, byte-exact; the first connection full, the rest resumed
// from the newest ticket with the message sent as 0-RTT. The peer is our own program on quic-go's
// public API (test/peers/quic-go, built by test/peers/build.sh). Without it the cells are skipped,
// and fail under CI=true, where setup.sh builds it.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { Connection, Engine, Http3Server, request, SslConfig, Stream } from '../lib';
import { HOST, pem } from './helpers';
import { recordCell, useInteropReport } from './helpers/interop-report';
import { FIXTURES, Peer, usePeers } from './helpers/processes';

const PEER = path.join(__dirname, '..', 'build-peers', 'quic-go-peer');
const built = fs.existsSync(PEER);
const CERTS = path.join(FIXTURES, 'certs');
const KiB = 1024;
const CONNECTIONS = 5; // per cell: one full handshake, then resumptions with 0-RTT

function count<T>(items: T[], test: (item: T) => unknown): number {
  return items.filter((item) => Boolean(test(item))).length;
}

/** The bytes GET /bytes/N answers on both sides: byte i is (i*31+7) mod 256. */
function patternOf(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 255;
  return bytes;
}

if (!built && process.env.CI === 'true') {
  test('the quic-go peer is built (test/peers/build.sh, run by setup.sh)', () => {
    expect(PEER).toBe('built');
  });
}

(built ? describe : describe.skip)('interop with quic-go', () => {
  const peers = usePeers();
  useInteropReport();
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  /** Starts a peer server mode; resolves with its port once it listens. */
  async function startPeerServer(mode: 'server' | 'h3-server', extra: string[] = []): Promise<{ server: Peer; port: number }> {
    const server = peers.start(PEER, [
      mode, '-addr', `${HOST}:0`, '-cert', path.join(CERTS, 'server.pem'), '-key', path.join(CERTS, 'server-key.pem'), '-duration', '60s', ...extra,
    ], true);
    const { listening } = await server.waitFor((report) => typeof report.listening === 'string', 'listening');
    return { server, port: Number(String(listening).split(':').at(-1)) };
  }

  /** A quicket client engine (closed after the test) and its SslConfig for `alpn`. */
  function quicketClient(alpn: string): { engine: Engine; ssl: SslConfig } {
    const engine = new Engine();
    closers.push(() => engine.close());
    return { engine, ssl: new SslConfig({ alpn: [alpn], ca: pem('ca.pem') }) };
  }

  /**
   * One quicket connection: `exchange` runs in the tick of connect() (so it rides 0-RTT when the
   * ticket allows); then the connection waits for its new ticket and closes gracefully.
   */
  async function quicketConnection<T>(engine: Engine, port: number, ssl: SslConfig, ticket: Buffer | undefined,
    exchange: (connection: Connection) => Promise<T>): Promise<{ result: T; resumed: boolean; earlyData: string; ticket?: Buffer }> {
    const connection = engine.connect({ host: HOST, port, servername: 'localhost', ssl, ticket });
    const tickets: Buffer[] = [];
    connection.on('ticket', (fresh: Buffer) => tickets.push(fresh));
    const result = await exchange(connection);
    const info = await connection.handshake;
    while (tickets.length === 0 && !connection.closed) await new Promise((resolve) => setTimeout(resolve, 10));
    await connection.close({ timeout: 1000 });
    return { result, resumed: info.resumed, earlyData: info.earlyData, ticket: tickets.at(-1) };
  }

  /** Echoes `message` on a raw stream opened in the same tick; resolves whether it came back exactly. */
  function echoes(message: Buffer): (connection: Connection) => Promise<boolean> {
    return async (connection) => {
      const stream = connection.openStream();
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      const ended = new Promise<void>((resolve, reject) => stream.once('end', resolve).once('error', reject));
      stream.end(message);
      await ended;
      return Buffer.concat(chunks).equals(message);
    };
  }

  describe.each([1 * KiB, 1024 * KiB])('%d bytes', (size) => {
    test('quic-go client → quicket server: every echo byte-exact; resumed and 0-RTT accepted after the first', async () => {
      const server = new Engine({
        ssl: new SslConfig({ alpn: ['echo'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true }),
      });
      closers.push(() => server.close());
      const seen: Array<{ resumed: boolean; early: boolean }> = [];
      server.on('connection', (connection: Connection) => {
        connection.on('error', () => {});
        connection.on('stream', (stream: Stream) => {
          seen.push({ resumed: connection.resumed, early: stream.early });
          stream.on('error', () => {});
          stream.pipe(stream);
        });
      });
      const { port } = await server.listen({ host: HOST, port: 0 });
      const client = peers.start(PEER, [
        'client', '-addr', `${HOST}:${port}`, '-ca', path.join(CERTS, 'ca.pem'),
        '-n', String(CONNECTIONS), '-size', String(size), '-gap-min-ms', '0', '-gap-max-ms', '50', '-seed', '1',
      ], true);
      expect(await client.exit()).toBe(0);
      const perConnection = client.reports.filter((report) => typeof report.i === 'number');
      expect(perConnection).toHaveLength(CONNECTIONS);
      expect(perConnection.every((report) => report.ok)).toBe(true);
      expect(perConnection.map((report) => [report.resumed, report.used0rtt])).toEqual([
        [false, false],
        ...Array.from({ length: CONNECTIONS - 1 }, () => [true, true]),
      ]);
      recordCell({ peer: 'quic-go', direction: 'peer client → quicket server', protocol: 'raw', size,
        connections: perConnection.length, exact: count(perConnection, (r) => r.ok), resumed: count(perConnection, (r) => r.resumed), earlyAccepted: count(perConnection, (r) => r.used0rtt) });
      expect(seen).toHaveLength(CONNECTIONS);
      expect(seen.slice(1).every((stream) => stream.resumed)).toBe(true);
    });

    test('quicket client → quic-go server: every echo byte-exact; resumed and 0-RTT accepted after the first', async () => {
      const { server, port } = await startPeerServer('server');
      const { engine, ssl } = quicketClient('echo');
      let ticket: Buffer | undefined;
      const outcomes: Array<{ resumed: boolean; earlyData: string; exact: boolean }> = [];
      for (let i = 0; i < CONNECTIONS; i++) {
        const done = await quicketConnection(engine, port, ssl, ticket, echoes(randomBytes(size)));
        outcomes.push({ resumed: done.resumed, earlyData: done.earlyData, exact: done.result });
        ticket = done.ticket;
      }
      recordCell({ peer: 'quic-go', direction: 'quicket client → peer server', protocol: 'raw', size,
        connections: outcomes.length, exact: count(outcomes, (o) => o.exact), resumed: count(outcomes, (o) => o.resumed), earlyAccepted: count(outcomes, (o) => o.earlyData === 'accepted') });
      expect(outcomes).toEqual([
        { resumed: false, earlyData: 'none', exact: true },
        ...Array.from({ length: CONNECTIONS - 1 }, () => ({ resumed: true, earlyData: 'accepted', exact: true })),
      ]);
      // The peer's own view, one line per connection once it ends.
      const lines = () => server.reports.filter((report) => typeof report.conn === 'number');
      await server.waitFor(() => lines().length === CONNECTIONS, 'a line per connection');
      const byConnection = lines().sort((a, b) => a.conn - b.conn);
      expect(byConnection.map((report) => [report.resumed, report.earlyData, report.error ?? ''])).toEqual([
        [false, false, ''],
        ...Array.from({ length: CONNECTIONS - 1 }, () => [true, true, '']),
      ]);
    });
  });

  describe.each([1 * KiB, 1024 * KiB])('HTTP/3, %d-byte responses', (size) => {
    test('quic-go HTTP/3 client → quicket Http3Server: every body byte-exact; resumed and 0-RTT GETs after the first', async () => {
      const seen: Array<{ early: boolean; resumed: boolean }> = [];
      const server = new Http3Server(
        { ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true }) },
        (req, res) => {
          seen.push({ early: req.early, resumed: req.connection.resumed });
          const length = Number(req.path.replace('/bytes/', ''));
          res.writeHead(200, { 'content-length': String(length) });
          res.end(patternOf(length));
        },
      );
      closers.push(() => server.close());
      const { port } = await server.listen({ host: HOST, port: 0 });
      const client = peers.start(PEER, [
        'h3-client', '-addr', `${HOST}:${port}`, '-ca', path.join(CERTS, 'ca.pem'), '-n', String(CONNECTIONS), '-size', String(size),
      ], true);
      expect(await client.exit()).toBe(0);
      const perConnection = client.reports.filter((report) => typeof report.i === 'number');
      recordCell({ peer: 'quic-go', direction: 'peer client → quicket server', protocol: 'h3', size,
        connections: perConnection.length, exact: count(perConnection, (r) => r.ok), resumed: count(perConnection, (r) => r.resumed), earlyAccepted: count(perConnection, (r) => r.used0rtt) });
      expect(perConnection.map((report) => [report.ok, report.status, report.bytes, report.resumed, report.used0rtt])).toEqual([
        [true, 200, size, false, false],
        ...Array.from({ length: CONNECTIONS - 1 }, () => [true, 200, size, true, true]),
      ]);
      expect(seen).toHaveLength(CONNECTIONS);
      expect(seen.slice(1).every((request) => request.resumed)).toBe(true);
    });

    test('quicket request() → quic-go HTTP/3 server: every body byte-exact; resumed and 0-RTT accepted after the first', async () => {
      const { server, port } = await startPeerServer('h3-server');
      const { engine, ssl } = quicketClient('h3');
      const expected = patternOf(size);
      let ticket: Buffer | undefined;
      const outcomes: Array<{ status: number; exact: boolean; resumed: boolean; earlyData: string }> = [];
      for (let i = 0; i < CONNECTIONS; i++) {
        const done = await quicketConnection(engine, port, ssl, ticket, async (connection) => {
          const response = await request(connection, { path: `/bytes/${size}` });
          const chunks: Buffer[] = [];
          for await (const chunk of response.body) chunks.push(chunk as Buffer);
          return { status: response.status, exact: Buffer.concat(chunks).equals(expected) };
        });
        outcomes.push({ ...done.result, resumed: done.resumed, earlyData: done.earlyData });
        ticket = done.ticket;
      }
      recordCell({ peer: 'quic-go', direction: 'quicket client → peer server', protocol: 'h3', size,
        connections: outcomes.length, exact: count(outcomes, (o) => o.exact), resumed: count(outcomes, (o) => o.resumed), earlyAccepted: count(outcomes, (o) => o.earlyData === 'accepted') });
      expect(outcomes).toEqual([
        { status: 200, exact: true, resumed: false, earlyData: 'none' },
        ...Array.from({ length: CONNECTIONS - 1 }, () => ({ status: 200, exact: true, resumed: true, earlyData: 'accepted' })),
      ]);
      const lines = () => server.reports.filter((report) => typeof report.request === 'number');
      await server.waitFor(() => lines().length === CONNECTIONS, 'a line per request');
      expect(lines().sort((a, b) => a.request - b.request).map((report) => [report.resumed, report.used0rtt])).toEqual([
        [false, false],
        ...Array.from({ length: CONNECTIONS - 1 }, () => [true, true]),
      ]);
    });
  });

  test('0-RTT rejected: a quic-go client whose ticket the quicket server can no longer open still gets every byte', async () => {
    const server = new Engine({
      ssl: new SslConfig({ alpn: ['echo'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true }),
    });
    closers.push(() => server.close());
    let connections = 0;
    server.on('connection', (connection: Connection) => {
      const index = ++connections;
      connection.on('error', () => {});
      connection.on('stream', (stream: Stream) => {
        stream.on('error', () => {});
        stream.pipe(stream);
      });
      // The second connection's ticket (issued before it closes) is the last under the old key.
      if (index === 2) connection.once('close', () => server.setTicketKeys(randomBytes(48)));
    });
    const { port } = await server.listen({ host: HOST, port: 0 });
    const client = peers.start(PEER, [
      'client', '-addr', `${HOST}:${port}`, '-ca', path.join(CERTS, 'ca.pem'),
      '-n', '4', '-size', String(64 * KiB), '-gap-min-ms', '100', '-gap-max-ms', '150', '-seed', '1',
    ], true);
    expect(await client.exit()).toBe(0);
    const perConnection = client.reports.filter((report) => typeof report.i === 'number');
    expect(perConnection.map((report) => [report.ok, report.resumed, report.used0rtt])).toEqual([
      [true, false, false],
      [true, true, true],
      [true, false, false], // the old key's ticket: a full handshake, the 0-RTT bytes resent
      [true, true, true],
    ]);
  });

  test('0-RTT rejected: quicket resuming at a quic-go server that replaced its ticket key still delivers every byte', async () => {
    const { server, port } = await startPeerServer('server', ['-rotate-after', '2']);
    const { engine, ssl } = quicketClient('echo');
    const echo = async (ticket?: Buffer) => {
      const done = await quicketConnection(engine, port, ssl, ticket, echoes(randomBytes(64 * KiB)));
      return { ticket: done.ticket, resumed: done.resumed, earlyData: done.earlyData, exact: done.result };
    };
    const first = await echo();
    const second = await echo(first.ticket);
    await server.waitFor((report) => report.rotated === true, 'the key replaced');
    // The first ticket was sealed under the old key for sure: the server cannot open it any more.
    const third = await echo(first.ticket);
    const fourth = await echo(third.ticket);
    expect([first, second, third, fourth].map(({ resumed, earlyData, exact }) => ({ resumed, earlyData, exact }))).toEqual([
      { resumed: false, earlyData: 'none', exact: true },
      { resumed: true, earlyData: 'accepted', exact: true },
      { resumed: false, earlyData: 'rejected', exact: true },
      { resumed: true, earlyData: 'accepted', exact: true },
    ]);
  });
});
