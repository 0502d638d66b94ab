// Interop with quiche (Cloudflare's QUIC on BoringSSL), both directions: raw echo on ALPN 'echo',
// 1 KiB and 1 MiB, byte-exact, resumption and 0-RTT after the first connection; and a quiche
// client whose ticket the quicket server can no longer open. The peer is our own program
// (test/peers/quiche/peer.js) on the quiche binding inside npm's @matrixai/quic (a dev dependency).
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { Connection } from '../lib';
import { describePeer, KiB, PeerProgram, rawEchoCells, useInterop } from './helpers/interop';
import { useInteropReport } from './helpers/interop-report';

const SCRIPT = path.join(__dirname, 'peers', 'quiche', 'peer.js');
const BINDING = path.join(__dirname, '..', 'node_modules', '@matrixai', 'quic-linux-x64');
const QUICHE: PeerProgram = { name: 'quiche', command: process.execPath, prefix: [SCRIPT], artifact: BINDING };

describePeer(QUICHE)('interop with quiche', () => {
  const interop = useInterop(QUICHE);
  useInteropReport(QUICHE.name);

  rawEchoCells(interop);

  test('0-RTT rejected: a quiche client whose ticket the quicket server can no longer open still gets every byte', async () => {
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
      [true, false, false], // the old key's ticket: a full handshake; quiche resends the 0-RTT bytes
      [true, true, true],
    ]);
  });

  test('0-RTT rejected: quicket resuming at a quiche server that replaced its ticket key still delivers every byte', async () => {
    const { server, port } = await interop.startServer('server', ['-rotate-after', '2']);
    const { engine, ssl } = interop.quicketClient('echo');
    const echo = (ticket?: Buffer) => interop.quicketEcho(engine, port, ssl, 64 * KiB, ticket);
    const first = await echo();
    const second = await echo(first.ticket);
    await server.waitFor((report) => report.rotated === true, 'the key replaced');
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
