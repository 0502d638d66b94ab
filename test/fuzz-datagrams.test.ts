// Hostile datagrams at a listening engine while real clients keep working: a short, seeded run of
// the fuzzer in test/helpers/datagram-fuzzer.ts (scripts/fuzz-datagrams.js runs long ones), and
// the one datagram that the fuzzer found to take a server process down (fixed: it is refused).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { HOST, useEngines } from './helpers';
import { MUTATIONS, runDatagramFuzz } from './helpers/datagram-fuzzer';
import { findTransportParameters, openInitial, parseFrames, sealInitial } from './helpers/quic-initial';
import { UdpRelay } from './helpers/udp-relay';

const SCRIPT = path.join(__dirname, '..', 'scripts', 'fuzz-datagrams.js');

describe('hostile datagrams', () => {
  const engines = useEngines();

  test('3,000 seeded random and mutated datagrams (real Initials opened, changed, resealed) while real clients echo: nothing real fails', async () => {
    const report = await runDatagramFuzz({
      count: 3000,
      seed: 11,
      timeLimitMs: 60000,
      only: Object.keys(MUTATIONS),
    });
    expect(report.sent).toBe(3000);
    expect(report.realTraffic.liveFailures).toEqual({});
    expect(report.realTraffic.newFailures).toEqual({});
    expect(report.realTraffic.liveEchoes).toBeGreaterThan(0);
    expect(report.realTraffic.newConnections).toBeGreaterThan(0);
    expect(report.liveConnectionOpen).toBe(true);
    expect(report.serverStillServes).toBe(true);
    // The resealed Initials did get past decryption into the handshake code, and every
    // connection they created has ended.
    expect(report.fuzzConnections.created).toBeGreaterThan(100);
    expect(report.fuzzConnections.open).toBe(0);
    expect(report.pass).toBe(true);
  }, 90000);

  // Found by the fuzzer: a client Initial whose ClientHello lacks the quic_transport_parameters
  // extension used to abort the server process inside ngtcp2 ("conn_write_pkt: Assertion
  // `conn->negotiated_version' failed"); Initial keys are public, so anyone could send it. The
  // server now refuses it with missing_extension (CRYPTO_ERROR 0x16d), as RFC 9001 §8.2 wants.
  // Runs in a child process, so a regression aborts the child, not the suite.
  test('a ClientHello without quic_transport_parameters is refused and the server process survives', async () => {
    // A real client Initial, captured, with the extension's type changed from 0x39 to 0x38.
    const server = await engines.server();
    const relay = await UdpRelay.create({ targetPort: server.port });
    let datagram: Buffer;
    try {
      const flight = relay.captureFirstFlight();
      const connection = engines.client().connect({ host: HOST, port: relay.port, servername: 'localhost' });
      await connection.handshake;
      const packet = openInitial((await flight)[0])!;
      // ngtcp2 (since 1.13) cuts the ClientHello into several CRYPTO frames in shuffled order.
      const crypto = parseFrames(packet.payload).filter((f) => f.type === 0x06);
      const hello = Buffer.alloc(Math.max(...crypto.map((f) => f.cryptoOffset! + f.end - f.dataStart!)));
      for (const f of crypto) packet.payload.copy(hello, f.cryptoOffset!, f.dataStart!, f.end);
      const tp = findTransportParameters(hello)!;
      expect(hello.readUInt16BE(tp[0] - 4)).toBe(0x39);
      // The extension type's low byte, 0x39 -> 0x38, wherever its frame put it.
      const at = tp[0] - 3;
      const frame = crypto.find((f) => at >= f.cryptoOffset! && at < f.cryptoOffset! + f.end - f.dataStart!)!;
      const payload = Buffer.from(packet.payload);
      payload[frame.dataStart! + at - frame.cryptoOffset!] = 0x38;
      datagram = sealInitial({ ...packet, rest: undefined, dcid: randomBytes(16), payload, padTo: 1200 });
    } finally {
      await relay.close();
    }
    const result = await new Promise<{ code: number; signal: string | null; stdout: string }>((resolve) => {
      execFile(process.execPath, [SCRIPT, '--replay', datagram.toString('hex')], { timeout: 30000 }, (error, stdout) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, signal: (error as { signal?: string } | null)?.signal ?? null, stdout }),
      );
    });
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
    expect(JSON.parse(result.stdout)).toEqual({ survived: true, closes: ['ERR_QUIC_TLS_HANDSHAKE'] });
  });
});
