// What every interop test file shares: an interop peer program (our own small program on another
// QUIC stack's public API, test/peers/<name>, built by test/peers/build.sh), quicket's side of a
// connection that resumes and sends 0-RTT, and the two raw echo cells every peer runs (its client
// → a quicket server, quicket's client → its server). Every peer speaks the same command line and
// JSON lines (test/peers/quic-go/README.md): `server -addr -cert -key -duration` printing
// {"listening"} then {"conn","resumed","earlyData"} per connection, and `client -addr -ca -n -size`
// printing {"i","resumed","used0rtt","ok"} per connection.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { Connection, Engine, SslConfig, Stream } from '../../lib';
import { HOST, pem } from './index';
import { recordCell } from './interop-report';
import { FIXTURES, Peer, Report, usePeers } from './processes';

export const PEERS = path.join(__dirname, '..', '..', 'build-peers');
export const CERTS = path.join(FIXTURES, 'certs');
export const KiB = 1024;
/** Connections per cell: one full handshake, then resumptions with 0-RTT. */
export const CONNECTIONS = 5;

export interface PeerProgram {
  /** The name in the report: 'quic-go', 'quinn', ... */
  name: string;
  /** What to run: the peer binary, or an interpreter with the peer's script first in `prefix`. */
  command: string;
  prefix: string[];
  /** The file whose presence says the peer is built. */
  artifact: string;
}

export function isBuilt(peer: PeerProgram): boolean {
  return fs.existsSync(peer.artifact);
}

/**
 * `describe` for a peer's tests when it is built, `describe.skip` when not; under CI=true (where
 * setup.sh builds every peer) a missing peer is a failing test instead.
 */
export function describePeer(peer: PeerProgram): jest.Describe {
  // QUICKET_INTEROP_OPTIONAL: CI machines without Debian's peer sources (the GitHub workflow) skip.
  if (!isBuilt(peer) && process.env.CI === 'true' && !process.env.QUICKET_INTEROP_OPTIONAL) {
    test(`the ${peer.name} peer is built (test/peers/build.sh, run by setup.sh)`, () => {
      expect(peer.artifact).toBe('built');
    });
  }
  return isBuilt(peer) ? describe : describe.skip;
}

export function count<T>(items: T[], test: (item: T) => unknown): number {
  return items.filter((item) => Boolean(test(item))).length;
}

/** The echo a quicket client gets per connection, and whether the peer server saw it the same way. */
export interface QuicketOutcome {
  resumed: boolean;
  earlyData: string;
  exact: boolean;
}

/** The expected per-connection rows: the first full, the rest resumed with 0-RTT accepted. */
export function firstThenResumed<T>(first: T, resumed: T, connections = CONNECTIONS): T[] {
  return [first, ...Array.from({ length: connections - 1 }, () => resumed)];
}

/** Call once in a peer's describe block: starts its programs and quicket's side, closes both after each test. */
export function useInterop(peer: PeerProgram) {
  const peers = usePeers();
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  function run(args: string[]): Peer {
    return peers.start(peer.command, [...peer.prefix, ...args], true);
  }

  /** Starts one of the peer's server modes; resolves with its port once it listens. */
  async function startServer(mode = 'server', extra: string[] = []): Promise<{ server: Peer; port: number }> {
    const server = run([
      mode, '-addr', `${HOST}:0`, '-cert', path.join(CERTS, 'server.pem'), '-key', path.join(CERTS, 'server-key.pem'), '-duration', '60s', ...extra,
    ]);
    const { listening } = await server.waitFor((report) => typeof report.listening === 'string', 'listening', 30000);
    return { server, port: Number(String(listening).split(':').at(-1)) };
  }

  /** Runs one of the peer's client modes against `port` to its exit; resolves with its per-connection lines. */
  async function runClient(mode: string, port: number, extra: string[]): Promise<Report[]> {
    const client = run([mode, '-addr', `${HOST}:${port}`, '-ca', path.join(CERTS, 'ca.pem'), '-servername', 'localhost', ...extra]);
    const code = await client.exit();
    const lines = client.reports.filter((report) => typeof report.i === 'number');
    if (code !== 0) throw new Error(`${peer.name} ${mode} exited ${code}; lines: ${JSON.stringify(client.reports)} stderr: ${client.stderr}`);
    return lines;
  }

  /** A quicket client engine (closed after the test) and its SslConfig for `alpn`. */
  function quicketClient(alpn: string): { engine: Engine; ssl: SslConfig } {
    const engine = new Engine();
    closers.push(() => engine.close());
    return { engine, ssl: new SslConfig({ alpn: [alpn], ca: pem('ca.pem') }) };
  }

  /** A quicket server engine (closed after the test) listening on loopback with `ssl`. */
  async function quicketServer(ssl: SslConfig): Promise<{ engine: Engine; port: number }> {
    const engine = new Engine({ ssl });
    closers.push(() => engine.close());
    const { port } = await engine.listen({ host: HOST, port: 0 });
    return { engine, port };
  }

  /** A quicket echo server accepting 0-RTT; `seen` gets each stream's view as it opens. */
  async function quicketEchoServer(): Promise<{ engine: Engine; port: number; seen: Array<{ resumed: boolean; early: boolean }> }> {
    const seen: Array<{ resumed: boolean; early: boolean }> = [];
    const server = await quicketServer(new SslConfig({ alpn: ['echo'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true }));
    server.engine.on('connection', (connection: Connection) => {
      connection.on('error', () => {});
      connection.on('stream', (stream: Stream) => {
        seen.push({ resumed: connection.resumed, early: stream.early });
        stream.on('error', () => {});
        stream.pipe(stream);
      });
    });
    return { ...server, seen };
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

  /** One quicket echo connection of `size` random bytes; resolves with its outcome and newest ticket. */
  async function quicketEcho(engine: Engine, port: number, ssl: SslConfig, size: number, ticket?: Buffer): Promise<QuicketOutcome & { ticket?: Buffer }> {
    const done = await quicketConnection(engine, port, ssl, ticket, echoes(randomBytes(size)));
    return { resumed: done.resumed, earlyData: done.earlyData, exact: done.result, ticket: done.ticket };
  }

  /**
   * The raw cell "peer client → quicket server": the peer's client makes CONNECTIONS echo
   * connections; resolves with its lines and what the quicket server saw per stream.
   */
  async function peerClientCell(size: number, clientExtra: string[] = []): Promise<{ lines: Report[]; seen: Array<{ resumed: boolean; early: boolean }> }> {
    const { port, seen } = await quicketEchoServer();
    const lines = await runClient('client', port, ['-n', String(CONNECTIONS), '-size', String(size), ...clientExtra]);
    recordCell({ peer: peer.name, direction: 'peer client → quicket server', protocol: 'raw', size,
      connections: lines.length, exact: count(lines, (r) => r.ok), resumed: count(lines, (r) => r.resumed), earlyAccepted: count(lines, (r) => r.used0rtt) });
    return { lines, seen };
  }

  /**
   * The raw cell "quicket client → peer server": CONNECTIONS quicket echo connections, each
   * resuming from the previous one's ticket; resolves with quicket's outcomes and the peer server's
   * line per connection (in connection order).
   */
  async function quicketClientCell(size: number): Promise<{ outcomes: QuicketOutcome[]; serverLines: Report[] }> {
    const { server, port } = await startServer('server');
    const { engine, ssl } = quicketClient('echo');
    let ticket: Buffer | undefined;
    const outcomes: QuicketOutcome[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const { ticket: fresh, ...outcome } = await quicketEcho(engine, port, ssl, size, ticket);
      outcomes.push(outcome);
      ticket = fresh;
    }
    recordCell({ peer: peer.name, direction: 'quicket client → peer server', protocol: 'raw', size,
      connections: outcomes.length, exact: count(outcomes, (o) => o.exact), resumed: count(outcomes, (o) => o.resumed), earlyAccepted: count(outcomes, (o) => o.earlyData === 'accepted') });
    const lines = () => server.reports.filter((report) => typeof report.conn === 'number');
    await server.waitFor(() => lines().length === CONNECTIONS, 'a line per connection');
    return { outcomes, serverLines: lines().sort((a, b) => a.conn - b.conn) };
  }

  return { run, startServer, runClient, quicketClient, quicketServer, quicketEchoServer, quicketConnection, quicketEcho, peerClientCell, quicketClientCell };
}

/** The raw matrix every peer runs, at 1 KiB and 1 MiB, with the 100% target asserted. */
export function rawEchoCells(interop: ReturnType<typeof useInterop>, options: { clientExtra?: string[] } = {}): void {
  describe.each([1 * KiB, 1024 * KiB])('raw echo, %d bytes', (size) => {
    test('peer client → quicket server: every echo byte-exact; resumed and 0-RTT accepted after the first', async () => {
      const { lines, seen } = await interop.peerClientCell(size, options.clientExtra);
      expect(lines.map((r) => ({ ok: r.ok, resumed: r.resumed, used0rtt: r.used0rtt }))).toEqual(firstThenResumed(
        { ok: true, resumed: false, used0rtt: false }, { ok: true, resumed: true, used0rtt: true }));
      expect(seen).toHaveLength(CONNECTIONS);
      expect(seen.slice(1).every((stream) => stream.resumed)).toBe(true);
    });

    test('quicket client → peer server: every echo byte-exact; resumed and 0-RTT accepted after the first', async () => {
      const { outcomes, serverLines } = await interop.quicketClientCell(size);
      expect(outcomes).toEqual(firstThenResumed(
        { resumed: false, earlyData: 'none', exact: true }, { resumed: true, earlyData: 'accepted', exact: true }));
      // The peer's own view, one line per connection once it ends.
      expect(serverLines.map((r) => [r.resumed, r.earlyData, r.error ?? ''])).toEqual(firstThenResumed(
        [false, false, ''], [true, true, '']));
    });
  });
}

/**
 * The two 0-RTT rejection tests, for peers that handle rejection correctly: the peer's client
 * resuming at a quicket server whose ticket key changed after its second connection, and quicket
 * resuming at the peer's server after it rotated (`server -rotate-after 2`; `resumeThirdFrom`
 * names the ticket its rotation is sure to have invalidated). Every byte arrives either way.
 */
export function rejectionCells(interop: ReturnType<typeof useInterop>, peer: string, options: { resumeThirdFrom: 'first' | 'second' }): void {
  test(`0-RTT rejected: a ${peer} client whose ticket the quicket server can no longer open still gets every byte`, async () => {
    const { engine, port } = await interop.quicketEchoServer();
    let connections = 0;
    engine.on('connection', (connection: Connection) => {
      // The second connection's ticket (issued before it closes) is the last under the old key.
      if (++connections === 2) connection.once('close', () => engine.setTicketKeys(randomBytes(48)));
    });
    const lines = await interop.runClient('client', port, ['-n', '4', '-size', String(64 * KiB), '-gap-min-ms', '100', '-gap-max-ms', '150', '-seed', '1']);
    expect(lines.map((r) => [r.ok, r.resumed, r.used0rtt])).toEqual([
      [true, false, false],
      [true, true, true],
      [true, false, false], // the old key's ticket: a full handshake, the 0-RTT bytes resent
      [true, true, true],
    ]);
  });

  test(`0-RTT rejected: quicket resuming at a ${peer} server that rotated its tickets still delivers every byte`, async () => {
    const { server, port } = await interop.startServer('server', ['-rotate-after', '2']);
    const { engine, ssl } = interop.quicketClient('echo');
    const echo = (ticket?: Buffer) => interop.quicketEcho(engine, port, ssl, 64 * KiB, ticket);
    const first = await echo();
    const second = await echo(first.ticket);
    await server.waitFor((report) => report.rotated === true, 'the rotation');
    const third = await echo((options.resumeThirdFrom === 'first' ? first : second).ticket);
    const fourth = await echo(third.ticket);
    expect([first, second, third, fourth].map(({ resumed, earlyData, exact }) => ({ resumed, earlyData, exact }))).toEqual([
      { resumed: false, earlyData: 'none', exact: true },
      { resumed: true, earlyData: 'accepted', exact: true },
      { resumed: false, earlyData: 'rejected', exact: true },
      { resumed: true, earlyData: 'accepted', exact: true },
    ]);
  });
}
