#!/usr/bin/env bash
# Builds the addon with the UDP layer macOS and other systems get (QUICKET_PORTABLE_SOCKETS: no
# GSO, GRO or ICMP error queue, non-blocking sockets set up with fcntl) into build-portable/, and
# runs the connection, stream, name and HTTP/3 tests against it. Tests that need ICMP errors
# skip themselves (socketFeatures.icmpErrors). Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js compile --out build-portable --CDQUICKET_PORTABLE_SOCKETS=ON
QUICKET_NATIVE=$PWD/build-portable/Release/quicket.node node -e '
  const { socketFeatures } = require("./dist");
  if (socketFeatures.gso || socketFeatures.icmpErrors) { console.error("not a portable build:", socketFeatures); process.exit(1); }'
QUICKET_NATIVE=$PWD/build-portable/Release/quicket.node \
  npx jest test/connections.test.ts test/streams.test.ts test/dns.test.ts test/http3.test.ts test/tickets.test.ts "$@"
echo "check-portable-sockets: PASS"
