// Interop with aioquic (Python QUIC with its own TLS 1.3), both directions: raw echo on ALPN 'echo',
// 1 KiB and 1 MiB, byte-exact, resumption and 0-RTT after the first connection; and 0-RTT
// rejection both ways (an aioquic client whose ticket the quicket server can no longer open, and
// quicket resuming at an aioquic server that forgot its tickets). The peer is our own program
// (test/peers/aioquic/peer.py) on aioquic's public API, run by the Python that
// test/peers/aioquic/build.sh prepares in build-peers/ (aioquic 1.3.0 from Debian's tarball).
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { Connection } from '../lib';
import { describePeer, KiB, PEERS, PeerProgram, rawEchoCells, useInterop } from './helpers/interop';
import { useInteropReport } from './helpers/interop-report';

const PYTHON = path.join(PEERS, 'aioquic-python');
const SCRIPT = path.join(__dirname, 'peers', 'aioquic', 'peer.py');
const AIOQUIC: PeerProgram = { name: 'aioquic', command: PYTHON, prefix: [SCRIPT], artifact: PYTHON };

describePeer(AIOQUIC)('interop with aioquic', () => {
  const interop = useInterop(AIOQUIC);
  useInteropReport(AIOQUIC.name);

  rawEchoCells(interop);

  test('0-RTT rejected: an aioquic client whose ticket the quicket server can no longer open still gets every byte', async () => {
    const { engine, port } = await interop.quicketEchoServer();
    let connections = 0;
    engine.on('connection', (connection: Connection) => {
      // The second connection's ticket (issued before it closes) is the last under the old key.
      if (++connections === 2) connection.once('close', () => engine.setTicketKeys(randomBytes(48)));
    });
    const lines = await interop.runClient('client', port, ['-n', '4', '-size', String(64 * KiB), '-gap-min-ms', '100', '-gap-max-ms', '150', '-seed', '1']);
    expect(lines.map((r) => [r.ok, r.resumed, r.used0rtt, r.rejected0rtt])).toEqual([
      [true, false, false, false],
      [true, true, true, false],
      [true, false, false, true], // the old key's ticket: a full handshake; aioquic resends the 0-RTT bytes
      [true, true, true, false],
    ]);
  });

  test('0-RTT rejected: quicket resuming at an aioquic server that forgot its tickets still delivers every byte', async () => {
    const { server, port } = await interop.startServer('server', ['-rotate-after', '2']);
    const { engine, ssl } = interop.quicketClient('echo');
    const echo = (ticket?: Buffer) => interop.quicketEcho(engine, port, ssl, 64 * KiB, ticket);
    const first = await echo();
    const second = await echo(first.ticket);
    await server.waitFor((report) => report.rotated === true, 'the tickets forgotten');
    const third = await echo(second.ticket);
    const fourth = await echo(third.ticket);
    expect([first, second, third, fourth].map(({ resumed, earlyData, exact }) => ({ resumed, earlyData, exact }))).toEqual([
      { resumed: false, earlyData: 'none', exact: true },
      { resumed: true, earlyData: 'accepted', exact: true },
      { resumed: false, earlyData: 'rejected', exact: true },
      { resumed: true, earlyData: 'accepted', exact: true },
    ]);
  });
});
