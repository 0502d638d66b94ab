// Interop with quiche (Cloudflare's QUIC on BoringSSL), both directions: raw echo on ALPN 'echo',
// 1 KiB and 1 MiB, byte-exact, resumption and 0-RTT after the first connection; and a quiche
// client whose ticket the quicket server can no longer open. The peer is our own program
// (test/peers/quiche/peer.js) on the quiche binding inside npm's @matrixai/quic (a dev dependency).
import path from 'node:path';

import { describePeer, PeerProgram, rawEchoCells, rejectionCells, useInterop } from './helpers/interop';
import { useInteropReport } from './helpers/interop-report';

const SCRIPT = path.join(__dirname, 'peers', 'quiche', 'peer.js');
const BINDING = path.join(__dirname, '..', 'node_modules', '@matrixai', 'quic-linux-x64');
const QUICHE: PeerProgram = { name: 'quiche', command: process.execPath, prefix: [SCRIPT], artifact: BINDING };

describePeer(QUICHE)('interop with quiche', () => {
  const interop = useInterop(QUICHE);
  useInteropReport(QUICHE.name);

  rawEchoCells(interop);

  rejectionCells(interop, 'quiche', { resumeThirdFrom: 'first' });
});
