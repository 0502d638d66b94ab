// Interop with quic-go (Go's crypto/tls, an independent QUIC and TLS 1.3 stack), both directions:
// raw echo on ALPN 'echo' and HTTP/3 GETs, 1 KiB and 1 MiB, byte-exact; the first connection full,
// the rest resumed from the newest ticket with the message sent as 0-RTT; and the 0-RTT rejection
// path both ways. The peer is our own program on quic-go's public API (test/peers/quic-go).
import path from 'node:path';

import { Http3Server, request, SslConfig } from '../lib';
import { HOST, pem } from './helpers';
import { CONNECTIONS, count, describePeer, firstThenResumed, KiB, PEERS, PeerProgram, rawEchoCells, rejectionCells, useInterop } from './helpers/interop';
import { recordCell, useInteropReport } from './helpers/interop-report';

const QUIC_GO: PeerProgram = { name: 'quic-go', command: path.join(PEERS, 'quic-go-peer'), prefix: [], artifact: path.join(PEERS, 'quic-go-peer') };

/** The bytes GET /bytes/N answers on both sides: byte i is (i*31+7) mod 256. */
function patternOf(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 255;
  return bytes;
}

describePeer(QUIC_GO)('interop with quic-go', () => {
  const interop = useInterop(QUIC_GO);
  useInteropReport(QUIC_GO.name);

  rawEchoCells(interop, { clientExtra: ['-gap-min-ms', '0', '-gap-max-ms', '50', '-seed', '1'] });

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
      const { port } = await server.listen({ host: HOST, port: 0 });
      try {
        const lines = await interop.runClient('h3-client', port, ['-n', String(CONNECTIONS), '-size', String(size)]);
        recordCell({ peer: QUIC_GO.name, direction: 'peer client → quicket server', protocol: 'h3', size,
          connections: lines.length, exact: count(lines, (r) => r.ok), resumed: count(lines, (r) => r.resumed), earlyAccepted: count(lines, (r) => r.used0rtt) });
        expect(lines.map((r) => [r.ok, r.status, r.bytes, r.resumed, r.used0rtt])).toEqual(firstThenResumed(
          [true, 200, size, false, false], [true, 200, size, true, true]));
        expect(seen).toHaveLength(CONNECTIONS);
        expect(seen.slice(1).every((request) => request.resumed)).toBe(true);
      } finally {
        await server.close();
      }
    });

    test('quicket request() → quic-go HTTP/3 server: every body byte-exact; resumed and 0-RTT accepted after the first', async () => {
      const { server, port } = await interop.startServer('h3-server');
      const { engine, ssl } = interop.quicketClient('h3');
      const expected = patternOf(size);
      let ticket: Buffer | undefined;
      const outcomes: Array<{ status: number; exact: boolean; resumed: boolean; earlyData: string }> = [];
      for (let i = 0; i < CONNECTIONS; i++) {
        const done = await interop.quicketConnection(engine, port, ssl, ticket, async (connection) => {
          const response = await request(connection, { path: `/bytes/${size}` });
          const chunks: Buffer[] = [];
          for await (const chunk of response.body) chunks.push(chunk as Buffer);
          return { status: response.status, exact: Buffer.concat(chunks).equals(expected) };
        });
        outcomes.push({ ...done.result, resumed: done.resumed, earlyData: done.earlyData });
        ticket = done.ticket;
      }
      recordCell({ peer: QUIC_GO.name, direction: 'quicket client → peer server', protocol: 'h3', size,
        connections: outcomes.length, exact: count(outcomes, (o) => o.exact), resumed: count(outcomes, (o) => o.resumed), earlyAccepted: count(outcomes, (o) => o.earlyData === 'accepted') });
      expect(outcomes).toEqual(firstThenResumed(
        { status: 200, exact: true, resumed: false, earlyData: 'none' }, { status: 200, exact: true, resumed: true, earlyData: 'accepted' }));
      const lines = () => server.reports.filter((report) => typeof report.request === 'number');
      await server.waitFor(() => lines().length === CONNECTIONS, 'a line per request');
      expect(lines().sort((a, b) => a.request - b.request).map((r) => [r.resumed, r.used0rtt])).toEqual(firstThenResumed(
        [false, false], [true, true]));
    });
  });

  rejectionCells(interop, 'quic-go', { resumeThirdFrom: 'first' });
});
