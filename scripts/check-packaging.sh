#!/usr/bin/env bash
# Proves that both build files build a working addon and that the `npm pack` tarball installs and
# loads its prebuilt binary without compiling anything:
#   1. dist/ builds (tsc)
#   2. binding.gyp: prebuildify (node-gyp) -> prebuilds/linux-x64/*.node loads, exports are there
#   3. CMakeLists.txt: cmake-js -> build/Release/quicket.node loads, exports are there
#   4. npm pack: the tarball has dist/ and prebuilds/, no build/, no hard links
#   5. install of the tarball into an empty project with every compiler replaced by a stub that
#      fails: no build/, the prebuild is what loads, an SslConfig can be created
# Prints PASS/FAIL per step; exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset QUICKET_NATIVE

# load_check ADDON: dist/ loads with QUICKET_NATIVE=ADDON, that file is the one mapped, exports exist.
load_check() {
  QUICKET_NATIVE="$1" node -e '
    const fs = require("fs");
    const q = require("./dist");
    for (const k of ["Engine", "SslConfig", "Ticket"])
      if (q[k] == null) throw new Error("export " + k + " missing");
    new q.SslConfig({ alpn: ["x"], rejectUnauthorized: false });
    const want = fs.realpathSync(process.env.QUICKET_NATIVE);
    if (!fs.readFileSync("/proc/self/maps", "utf8").includes(want)) throw new Error(want + " was not loaded");
    console.log("loaded " + want);
  '
}

step_tsc() { npx tsc -p tsconfig.build.json; }

step_gyp() {
  rm -rf prebuilds
  npx prebuildify --napi --strip
  local addon
  addon=$(find prebuilds/linux-x64 -name '*.node' | head -n1)
  [ -n "$addon" ] || { echo "no .node under prebuilds/linux-x64"; return 1; }
  load_check "$addon"
}

# Runs after step_gyp: node-gyp leaves its own build/, so clean it and build from scratch.
step_cmake() {
  npx cmake-js rebuild --out build
  [ -f build/CMakeCache.txt ] || { echo "build/ was not configured by CMake"; return 1; }
  load_check build/Release/quicket.node
}

step_pack() {
  mkdir -p "$TMP/pack"
  npm pack --pack-destination "$TMP/pack" >/dev/null
  local tgz listing
  tgz=$(ls "$TMP"/pack/*.tgz)
  listing=$(tar tvzf "$tgz")
  grep -Eq ' package/prebuilds/linux-x64/[^/]+\.node$' <<<"$listing" || { echo "no prebuild in tarball"; return 1; }
  grep -q ' package/dist/index.js$' <<<"$listing" || { echo "no dist/index.js in tarball"; return 1; }
  if grep -q ' package/build/' <<<"$listing"; then echo "build/ is in the tarball"; return 1; fi
  if grep -q '^h' <<<"$listing"; then echo "tarball has hard links (npm install drops them)"; return 1; fi
  grep -E ' package/(prebuilds|dist/index)' <<<"$listing"
}

step_install() {
  local tgz app=$TMP/app stubs=$TMP/stubs
  tgz=$(ls "$TMP"/pack/*.tgz)
  # Stub compilers and build tools: any use is recorded and fails.
  mkdir -p "$app" "$stubs"
  for t in cc gcc c++ g++ clang clang++ make cmake ninja; do
    printf '#!/bin/sh\necho "$0 $*" >> "%s/used"\nexit 1\n' "$stubs" > "$stubs/$t"
    chmod +x "$stubs/$t"
  done
  cd "$app"
  npm init -y >/dev/null
  unset npm_config_build_from_source  # (node-gyp-build: use the prebuild)
  PATH="$stubs:$PATH" npm install --offline=false --no-audit --no-fund --ignore-scripts=false \
    --foreground-scripts "$tgz" 2>&1 | tee "$TMP/install.log"
  # npm 11 warns about dependencies' install scripts (and may come to skip them): either way no compiling.
  grep -q '> quicket@.* install' "$TMP/install.log" || echo "note: npm did not run quicket's install script"
  if [ -f "$stubs/used" ]; then echo "install tried to compile:"; cat "$stubs/used"; return 1; fi
  [ ! -e node_modules/quicket/build ] || { echo "node_modules/quicket/build exists"; return 1; }
  ls node_modules/quicket/prebuilds/linux-x64/*.node
  node -e '
    const fs = require("fs");
    const q = require("quicket");
    new q.SslConfig({ alpn: ["x"], rejectUnauthorized: false });
    const want = fs.realpathSync("node_modules/quicket/prebuilds/linux-x64");
    if (!fs.readFileSync("/proc/self/maps", "utf8").includes(want + "/"))
      throw new Error("the prebuild in " + want + " was not loaded");
    console.log("quicket loads its prebuild; SslConfig created");
  '
}

failed=0
run() {
  local name=$1; shift
  echo "=== $name"
  set +e; ( set -e; cd "$ROOT"; "$@" ); local rc=$?; set -e
  local res=PASS; [ "$rc" -eq 0 ] || { res=FAIL; failed=1; }
  echo "$res: $name"; summary+="$res: $name"$'\n'
}
summary=""
run "TypeScript build (dist/)" step_tsc
run "binding.gyp build via prebuildify loads" step_gyp
run "cmake-js build loads" step_cmake
run "npm pack tarball contents" step_pack
run "tarball installs and loads its prebuild without a compiler" step_install

echo "=== summary"
printf '%s' "$summary"
exit "$failed"
