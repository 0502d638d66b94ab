// Interop with quinn (Rust, rustls 0.20), both directions: raw echo on ALPN 'echo', 1 KiB and
// 1 MiB, byte-exact, resumption and 0-RTT after the first connection. The peer is our own program
// on quinn's public API (test/peers/quinn, built offline by test/peers/build.sh). No 0-RTT
// rejection cell: quinn 0.9.3's client stalls after a rejection.
import path from 'node:path';

import { describePeer, PEERS, PeerProgram, rawEchoCells, useInterop } from './helpers/interop';
import { useInteropReport } from './helpers/interop-report';

const QUINN: PeerProgram = { name: 'quinn', command: path.join(PEERS, 'quinn-peer'), prefix: [], artifact: path.join(PEERS, 'quinn-peer') };

describePeer(QUINN)('interop with quinn', () => {
  const interop = useInterop(QUINN);
  useInteropReport(QUINN.name);

  rawEchoCells(interop);
});
