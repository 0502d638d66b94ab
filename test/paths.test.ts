// Paths (RFC 9000 9): a client whose source address changes mid-transfer (NAT rebinding, played by
// the relay's rebind(), which gives the client a new upstream port) keeps its connection and every
// byte; the server says so with 'pathChange' once the new path is validated, and until then sends
// there at most 3x what it received there (anti-amplification, RFC 9000 8.1). connection.migrate()
// moves a client to a new local port of its own, and a transfer survives that too.
//
// PATHS_REPORT=1 npx jest test/paths.test.ts prints the measured numbers (RELIABILITY.md "NAT rebinding").
import { createHash } from 'node:crypto';

import { Connection, PathChangeInfo, Stream } from '../lib';
import { HOST, next, pattern, useEngines } from './helpers';
import { UdpRelay } from './helpers/udp-relay';

const MIB = 1024 * 1024;
const TRANSFER = 4 * MIB;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function report(what: string, numbers: object): void {
  if (process.env.PATHS_REPORT) process.stdout.write(`${JSON.stringify({ test: what, ...numbers })}\n`);
}

/** Resolves with the next `count` 'pathChange' infos, or rejects after `ms`. */
function pathChanges(connection: Connection, count: number, ms: number): Promise<PathChangeInfo[]> {
  return new Promise((resolve, reject) => {
    const seen: PathChangeInfo[] = [];
    const timer = setTimeout(() => reject(new Error(`${seen.length} of ${count} pathChange events in ${ms} ms`)), ms);
    const listener = (info: PathChangeInfo): void => {
      seen.push(info);
      if (seen.length < count) return;
      clearTimeout(timer);
      connection.off('pathChange', listener);
      resolve(seen);
    };
    connection.on('pathChange', listener);
  });
}

/**
 * Writes `data` on a new stream (with backpressure) and collects the echo; `onEchoed(bytes)` runs
 * as the echo comes back, so a test can change the path mid-transfer.
 */
function echoTransfer(connection: Connection, data: Buffer, onEchoed: (bytes: number) => void): Promise<Buffer> {
  const stream: Stream = connection.openStream();
  const chunks: Buffer[] = [];
  let echoed = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      echoed += chunk.length;
      onEchoed(echoed);
    });
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
  const chunkSize = 64 * 1024;
  let offset = 0;
  const write = (): void => {
    while (offset < data.length) {
      const chunk = data.subarray(offset, offset + chunkSize);
      offset += chunk.length;
      if (!stream.write(chunk)) {
        stream.once('drain', write);
        return;
      }
    }
    stream.end();
  };
  write();
  return done;
}

describe('paths: NAT rebinding and migration', () => {
  const engines = useEngines();
  const relays = new Set<UdpRelay>();
  afterEach(async () => {
    await Promise.all([...relays].map((relay) => relay.close()));
    relays.clear();
  });

  /** An echo server behind a relay, and one client connection through it, handshake done. */
  async function throughRelay(): Promise<{ relay: UdpRelay; connection: Connection; serverConnection: Connection; connections: Connection[] }> {
    const server = await engines.server();
    const relay = await UdpRelay.create({ targetPort: server.port });
    relays.add(relay);
    const accepted = server.nextConnection();
    const connection = engines.client().connect({ host: HOST, port: relay.port, servername: 'localhost' });
    await connection.handshake;
    const serverConnection = await accepted;
    await serverConnection.handshake;
    return { relay, connection, serverConnection, connections: server.connections };
  }

  test.each([
    ['the old mapping still forwarding for a moment, as NATs do', true],
    ['the old mapping gone at once', false],
  ])('4 MiB echo through two NAT rebindings (%s): every byte, the same connection, pathChange with each new port', async (_, keepPrevious) => {
    const { relay, connection, serverConnection, connections } = await throughRelay();
    const firstPort = relay.upstreamPort();
    expect(serverConnection.remotePort).toBe(firstPort);
    const changes = pathChanges(serverConnection, 2, 20000);
    const newPorts: number[] = [];
    const rebinds: Array<Promise<void>> = [];
    // Rebind once a quarter and again once 60% of the echo is back: both mid-transfer.
    const thresholds = [TRANSFER / 4, (TRANSFER * 3) / 5];
    const data = pattern(TRANSFER, 13);
    const started = Date.now();
    const echoed = await echoTransfer(connection, data, (bytes) => {
      if (thresholds.length > 0 && bytes >= thresholds[0]) {
        thresholds.shift();
        rebinds.push(relay.rebind({ keepPrevious }).then((port) => void newPorts.push(port)));
      }
    });
    const elapsed = Date.now() - started;
    await Promise.all(rebinds);
    const [first, second] = await changes;

    expect(sha256(echoed)).toBe(sha256(data));
    expect(echoed.length).toBe(TRANSFER);
    expect(newPorts).toHaveLength(2);
    expect(first).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: newPorts[0], previousRemotePort: firstPort });
    expect(second).toMatchObject({ remotePort: newPorts[1], previousRemotePort: newPorts[0] });
    // The server's local end did not move; only the peer did.
    expect(first.localPort).toBe(first.previousLocalPort);
    expect(serverConnection.remotePort).toBe(newPorts[1]);
    expect(serverConnection.remoteAddress).toBe('127.0.0.1');
    // One connection on each side, open all along.
    expect(connections).toEqual([serverConnection]);
    expect(connection.closed).toBe(false);
    expect(serverConnection.closed).toBe(false);
    // And it goes on working on the newest path.
    const again = await echoTransfer(connection, pattern(64 * 1024, 14), () => {});
    expect(again.equals(pattern(64 * 1024, 14))).toBe(true);
    report('rebind twice', { keepPrevious, bytes: TRANSFER, rebinds: 2, ports: [firstPort, ...newPorts], ms: elapsed });
  }, 60000);

  test('before the new path validates, the server sends there at most 3x what it received there', async () => {
    const { relay, connection, serverConnection } = await throughRelay();
    // Every datagram on another upstream port than this one is on the new path (rebind() switches
    // the port before its promise resolves, so the tap cannot wait to learn the new one).
    const firstPort = relay.upstreamPort();
    let received = 0; // bytes the server received from the new port (UDP payload)
    let receivedDatagrams = 0;
    let sent = 0; // bytes the server sent to the new port
    let sentDatagrams = 0;
    // On the new path only the client's first datagram reaches the server: the server's
    // PATH_CHALLENGE gets no PATH_RESPONSE, so the path cannot validate.
    relay.tap(({ direction, upstreamPort, data }) => {
      if (upstreamPort === firstPort) return undefined;
      if (direction === 'toClient') {
        sent += data.length;
        sentDatagrams++;
        return undefined;
      }
      if (receivedDatagrams >= 1) return 'drop';
      received += data.length;
      receivedDatagrams++;
      return undefined;
    });
    let pathChanged = false;
    serverConnection.on('pathChange', () => {
      pathChanged = true;
    });
    let rebound: Promise<number> | undefined;
    // The transfer cannot finish (the relay never lets the path validate); afterEach closes it.
    echoTransfer(connection, pattern(TRANSFER, 21), (bytes) => {
      if (!rebound && bytes >= MIB) rebound = relay.rebind();
    }).catch(() => {});
    for (let waited = 0; !rebound && waited < 10000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    const newPort = await rebound!;
    // Past ngtcp2's validation timeout (3x max(PTO, 1 s)) and its retries.
    await new Promise((resolve) => setTimeout(resolve, 4000));

    expect(receivedDatagrams).toBe(1);
    expect(sent).toBeGreaterThan(0); // it did try the new path (PATH_CHALLENGE at least)
    expect(sent).toBeLessThanOrEqual(3 * received);
    expect(pathChanged).toBe(false);
    expect(serverConnection.remotePort).not.toBe(newPort);
    report('amplification', { received, receivedDatagrams, sent, sentDatagrams, ratio: sent / received });
  }, 30000);

  test('migrate(): a client moves to a new local port mid-transfer; the server sees the new port', async () => {
    const { connection, serverConnection, connections } = await (async () => {
      const server = await engines.server();
      const accepted = server.nextConnection();
      const client = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
      await client.handshake;
      const serverSide = await accepted;
      await serverSide.handshake;
      return { connection: client, serverConnection: serverSide, connections: server.connections };
    })();
    const oldLocal = connection.localPort;
    expect(serverConnection.remotePort).toBe(oldLocal);
    const serverChange = pathChanges(serverConnection, 1, 20000);
    const clientChange = next<PathChangeInfo>(connection, 'pathChange');
    let migration: Promise<PathChangeInfo> | undefined;
    const data = pattern(TRANSFER, 31);
    const echoed = await echoTransfer(connection, data, (bytes) => {
      if (!migration && bytes >= MIB) migration = connection.migrate();
    });
    const migrated = await migration!;
    const [atServer] = await serverChange;

    expect(sha256(echoed)).toBe(sha256(data));
    expect(migrated.previousLocalPort).toBe(oldLocal);
    expect(migrated.localPort).not.toBe(oldLocal);
    expect(await clientChange).toEqual(migrated);
    expect(connection.localPort).toBe(migrated.localPort);
    expect(connection.remotePort).toBe(migrated.previousRemotePort); // the server did not move
    expect(atServer).toMatchObject({ remotePort: migrated.localPort, previousRemotePort: oldLocal });
    expect(serverConnection.remotePort).toBe(migrated.localPort);
    expect(connections).toEqual([serverConnection]);
    // A second migration moves it again (the first migration's socket closes).
    const second = await connection.migrate();
    expect(second.previousLocalPort).toBe(migrated.localPort);
    const again = await echoTransfer(connection, pattern(64 * 1024, 32), () => {});
    expect(again.equals(pattern(64 * 1024, 32))).toBe(true);
    expect(serverConnection.remotePort).toBe(second.localPort);
    report('migrate', { bytes: TRANSFER, ports: [oldLocal, migrated.localPort, second.localPort] });
  }, 60000);

  test('migrate() refuses what it cannot do, with ERR_QUIC_MIGRATION', async () => {
    const { connection, serverConnection } = await engines.pair();
    await expect(serverConnection.migrate()).rejects.toMatchObject({ code: 'ERR_QUIC_MIGRATION' });
    const first = connection.migrate();
    await expect(connection.migrate()).rejects.toMatchObject({ code: 'ERR_QUIC_MIGRATION' });
    await first;
    const fresh = engines.client().connect({ host: HOST, port: (connection.remotePort as number), servername: 'localhost' });
    await expect(fresh.migrate()).rejects.toMatchObject({ code: 'ERR_QUIC_MIGRATION' });
    await fresh.handshake;
    await connection.close();
    await expect(connection.migrate()).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });
  });

  test('a migration that never validates rejects with ERR_QUIC_MIGRATION_FAILED and the connection stays put', async () => {
    const { relay, connection, serverConnection } = await throughRelay();
    // The relay drops whatever the client sends from any port but its first: the new path's
    // PATH_CHALLENGE never reaches the server.
    const clientAddress = `127.0.0.1:${connection.localPort}`;
    relay.tap(({ direction, client }) => (direction === 'toServer' && client !== clientAddress ? 'drop' : undefined));
    await expect(connection.migrate()).rejects.toMatchObject({ code: 'ERR_QUIC_MIGRATION_FAILED' });
    expect(connection.closed).toBe(false);
    const before = serverConnection.remotePort;
    const again = await echoTransfer(connection, pattern(64 * 1024, 41), () => {});
    expect(again.equals(pattern(64 * 1024, 41))).toBe(true);
    expect(serverConnection.remotePort).toBe(before);
  }, 30000);
});
