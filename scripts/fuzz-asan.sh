#!/usr/bin/env bash
# Runs the fuzzers (scripts/fuzz-datagrams.js, scripts/fuzz-tickets.js plain and --resealed) against an
# AddressSanitizer build of the addon, with LeakSanitizer on.
#
#   bash scripts/fuzz-asan.sh [--datagrams N] [--tickets N] [--seed N] [-- extra fuzz-datagrams.js args]
#
# The addon is built into $ASAN_BUILD_DIR (default build-asan/, shared with scripts/asan.sh).
# Node itself does not free everything at exit, so leak reports are only counted as failures
# when a leaked block was allocated with quicket's own code on the stack (quicket.node frames).
# Exit status: 0 clean; 1 an AddressSanitizer error, a leak from quicket, or a fuzzer failure.
set -euo pipefail
cd "$(dirname "$0")/.."

DATAGRAMS=20000
TICKETS=2000
SEED=1
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --datagrams) DATAGRAMS=$2; shift 2 ;;
    --tickets) TICKETS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "usage: fuzz-asan.sh [--datagrams N] [--tickets N] [--seed N] [-- fuzz-datagrams.js args]" >&2; exit 64 ;;
  esac
done

OUT=${ASAN_BUILD_DIR:-build-asan}
npx cmake-js compile --out "$OUT" --CDQUICKET_SANITIZE=address >/dev/null
ADDON=$(cd "$OUT" && pwd)/Release/quicket.node
ldd "$ADDON" | grep libasan >/dev/null || { echo "fuzz-asan.sh: $ADDON is not linked against libasan" >&2; exit 1; }
ASAN_LIB=$(gcc -print-file-name=libasan.so)
[ -e "$ASAN_LIB" ] || { echo "fuzz-asan.sh: gcc's libasan.so not found" >&2; exit 1; }
npx tsc -p tsconfig.build.json # fuzz-tickets.js uses dist/

LOGS=$(cd "$OUT" && pwd)/fuzz-asan-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
export LD_PRELOAD="$ASAN_LIB"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=86:handle_abort=1:log_path=$LOGS/asan"
export QUICKET_NATIVE="$ADDON"

rc=0
node scripts/fuzz-datagrams.js --count "$DATAGRAMS" --seed "$SEED" --time-limit 1800 ${EXTRA[@]+"${EXTRA[@]}"} || rc=$?
echo "fuzz-asan.sh: fuzz-datagrams.js exited with $rc" >&2
trc=0
node scripts/fuzz-tickets.js --cases "$TICKETS" --seed "$SEED" --time-limit 1800 || trc=$?
echo "fuzz-asan.sh: fuzz-tickets.js exited with $trc" >&2
# Forged session data: the envelope digest recomputed, so the damage reaches OpenSSL's session parser.
node scripts/fuzz-tickets.js --cases "$TICKETS" --seed "$SEED" --time-limit 1800 --resealed || trc=$((trc | $?))
echo "fuzz-asan.sh: fuzz-tickets.js --resealed exited with $trc" >&2
unset LD_PRELOAD

# Every ASan report, and the leak reports that involve quicket's own code.
errors=$(grep -ls "ERROR: AddressSanitizer" "$LOGS"/asan.* 2>/dev/null || true)
ours=$(node -e '
  const fs = require("fs");
  let count = 0, bytes = 0;
  for (const file of fs.readdirSync(process.argv[1])) {
    const text = fs.readFileSync(`${process.argv[1]}/${file}`, "utf8");
    for (const block of text.split(/\n\s*\n/)) {
      const m = /^(Direct|Indirect) leak of (\d+) byte/m.exec(block);
      if (m && /quicket\.node|\/native\/\w+\.cc/.test(block)) { count++; bytes += Number(m[2]); process.stderr.write(block + "\n\n"); }
    }
  }
  console.log(`${count} ${bytes}`);
' "$LOGS")
allLeaks=$(grep -hc "^Direct leak\|^Indirect leak" "$LOGS"/asan.* 2>/dev/null | paste -sd+ | bc 2>/dev/null || echo 0)
echo "fuzz-asan.sh: leak reports in all: ${allLeaks:-0}; involving quicket.node: ${ours% *} (${ours#* } bytes); logs in $LOGS"
if [ -n "$errors" ]; then
  cat $errors >&2
  echo "fuzz-asan.sh: FAIL: AddressSanitizer errors" >&2
  exit 1
fi
if [ "${ours% *}" != "0" ]; then echo "fuzz-asan.sh: FAIL: leaks from quicket" >&2; exit 1; fi
if [ "$rc" -ne 0 ] || [ "$trc" -ne 0 ]; then echo "fuzz-asan.sh: FAIL: a fuzzer failed" >&2; exit 1; fi
echo "fuzz-asan.sh: PASS"
