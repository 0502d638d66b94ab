#!/usr/bin/env bash
# Runs the jest suite against an AddressSanitizer build of the addon (build-asan/).
# Extra arguments go to jest, e.g. `npm run test:asan -- test/ticket.test.ts`.
# Exits non-zero if the tests fail or if ASan reports an error in any process.
set -euo pipefail
cd "$(dirname "$0")/.."

npx cmake-js compile --out build-asan --CDQUICKET_SANITIZE=address
ADDON=$PWD/build-asan/Release/quicket.node
# (Not `ldd | grep -q`: grep quitting early can kill ldd with SIGPIPE, which pipefail reports.)
grep -q libasan <<<"$(ldd "$ADDON")" || { echo "asan.sh: $ADDON is not linked against libasan" >&2; exit 1; }

# Node itself is not instrumented, so the ASan runtime has to be loaded first, with LD_PRELOAD.
ASAN_LIB=$(gcc -print-file-name=libasan.so)
[ -e "$ASAN_LIB" ] || { echo "asan.sh: gcc's libasan.so not found" >&2; exit 1; }

# Reports go to files so that an error in any process (jest, a worker, a child a test starts)
# is caught, not only one that changes jest's exit status.
LOGS=$PWD/build-asan/asan-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"

# detect_leaks=0: Node does not free everything at exit. halt_on_error: the first error is fatal.
rc=0
LD_PRELOAD="$ASAN_LIB" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:exitcode=86:handle_abort=1:log_path=$LOGS/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
QUICKET_NATIVE="$ADDON" \
  npx jest --runInBand "$@" || rc=$?

cat "$LOGS"/asan.* >&2 2>/dev/null || true
if grep -qs "ERROR: AddressSanitizer" "$LOGS"/asan.*; then
  echo "asan.sh: FAIL: AddressSanitizer reported errors (logs in $LOGS)" >&2
  exit 1
fi
if [ "$rc" -ne 0 ]; then echo "asan.sh: FAIL: jest exited with status $rc" >&2; exit "$rc"; fi
echo "asan.sh: PASS (no AddressSanitizer reports)"
