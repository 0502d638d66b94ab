#!/usr/bin/env bash
# Proves that both build files build a self-contained working addon and that the `npm pack`
# tarball installs and runs its prebuilt binary without compiling anything and without the old
# stack's shared libraries:
#   1. dist/ builds (tsc)
#   2. binding.gyp: prebuildify (node-gyp) -> prebuilds/linux-x64/*.node loads, exports are there
#   3. the prebuild's dynamic section: NEEDED only libc/libm/libstdc++/libgcc_s/ld-linux (and
#      libpthread/libdl); it exports exactly the two N-API entry points; it imports no OpenSSL,
#      ngtcp2 or nghttp3 symbol (node's own OpenSSL would satisfy such imports silently)
#   4. CMakeLists.txt: cmake-js -> build/Release/quicket.node loads, exports are there
#   5. the same dynamic-section checks on the cmake-js build
#   6. npm pack: the tarball has dist/ and prebuilds/, what a from-source install needs
#      (binding.gyp, native/ with native/tls/ and the exports files, deps/manifest.json,
#      scripts/build-deps.js), no build/, no deps/cache, deps/src or deps/<platform>, no hard links
#   7. install of the tarball into an empty project with every compiler replaced by a stub that
#      fails: no build/, the prebuild is what loads; then, in a private mount namespace where every
#      libngtcp2*, libnghttp3*, libgnutls*, libssl.so*, libcrypto.so* of the system is hidden
#      behind /dev/null, two Engines make a real QUIC handshake, an echo and a resumption over
#      loopback, no such library is mapped, and versions.openssl is 3.5.x
#   8. that installed package from an ES module (named imports, the same instance as require(),
#      internal paths refused) and from TypeScript: a .mts and a .cts file compile against its types
# Prints PASS/FAIL per step; exits non-zero if any failed. Needs root (for the mount namespace).
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

# elf_check ADDON: the addon's dynamic section names only the C/C++ runtime, it exports only the
# N-API entry points, and it leaves no TLS/QUIC symbol to be resolved by the process.
ALLOWED_NEEDED="libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2 libpthread.so.0 libdl.so.2"
WANTED_EXPORTS="napi_register_module_v1 node_api_module_get_api_version_v1"
elf_check() {
  local addon=$1 ok=0 needed lib exports undefined
  needed=$(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  echo "NEEDED: $(echo $needed)"
  for lib in $needed; do
    case " $ALLOWED_NEEDED " in
      *" $lib "*) ;;
      *) echo "not allowed: NEEDED $lib"; ok=1 ;;
    esac
  done
  exports=$(nm -D --defined-only "$addon" | awk '{print $3}' | sed 's/@.*//' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u | tr '\n' ' ' | sed 's/ $//')
  echo "exports: $exports"
  [ "$exports" = "$WANTED_EXPORTS" ] || { echo "exports should be exactly: $WANTED_EXPORTS"; ok=1; }
  undefined=$(nm -D --undefined-only "$addon" | awk '{print $2}' | sed 's/@.*//' |
    grep -E '^(SSL_|SSL$|TLS_|DTLS_|EVP_|OPENSSL_|OSSL_|ERR_|X509|BIO_|CRYPTO_|RAND_|PEM_|ASN1_|BN_|EC_|d2i_|i2d_|ngtcp2_|nghttp3_|gnutls_)' || true)
  [ -z "$undefined" ] || { echo "imports TLS/QUIC symbols (would bind to another library):"; echo "$undefined" | head -20; ok=1; }
  return $ok
}

step_tsc() { npm run build:ts; }

step_gyp() {
  rm -rf prebuilds
  npx prebuildify --napi --strip
  local addon
  addon=$(find prebuilds/linux-x64 -name '*.node' | head -n1)
  [ -n "$addon" ] || { echo "no .node under prebuilds/linux-x64"; return 1; }
  load_check "$addon"
}

step_gyp_elf() {
  local addon
  addon=$(find prebuilds/linux-x64 -name '*.node' | head -n1)
  [ -n "$addon" ] || { echo "no .node under prebuilds/linux-x64"; return 1; }
  elf_check "$addon" || return 1
  # The glibc and libstdc++ floors the README states are the prebuild's newest symbol versions.
  local glibc glibcxx
  glibc=$(objdump -T "$addon" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n1)
  glibcxx=$(objdump -T "$addon" | grep -o 'GLIBCXX_[0-9.]*' | sort -Vu | tail -n1)
  echo "needs: ${glibc} ${glibcxx}"
  grep -q "glibc ≥ ${glibc#GLIBC_} " README.md || { echo "README.md does not state the glibc floor ${glibc#GLIBC_}"; return 1; }
  grep -q "(${glibcxx})" README.md || { echo "README.md does not state the libstdc++ floor ${glibcxx}"; return 1; }
}

# Runs after step_gyp: node-gyp leaves its own build/, so clean it and build from scratch.
step_cmake() {
  npx cmake-js rebuild --out build
  [ -f build/CMakeCache.txt ] || { echo "build/ was not configured by CMake"; return 1; }
  load_check build/Release/quicket.node
}

step_cmake_elf() { elf_check build/Release/quicket.node; }

step_pack() {
  mkdir -p "$TMP/pack"
  npm pack --pack-destination "$TMP/pack" >/dev/null
  local tgz listing ok=0 f
  tgz=$(ls "$TMP"/pack/*.tgz)
  listing=$(tar tvzf "$tgz")
  grep -Eq ' package/prebuilds/linux-x64/[^/]+\.node$' <<<"$listing" || { echo "no prebuild in tarball"; ok=1; }
  # What node-gyp needs when no prebuild matches (binding.gyp runs scripts/build-deps.js).
  for f in dist/index.js binding.gyp native/sources.json native/exports.map native/exports.txt \
      deps/manifest.json scripts/build-deps.js; do
    grep -q " package/$f\$" <<<"$listing" || { echo "missing from the tarball: $f"; ok=1; }
  done
  while read -r f; do
    grep -q " package/$f\$" <<<"$listing" || { echo "missing from the tarball: $f"; ok=1; }
  done < <(node -p "require('./native/sources.json').join('\\n')"; find native -name '*.h')
  grep -q ' package/native/tls/' <<<"$listing" || { echo "no native/tls/ in tarball"; ok=1; }
  if grep -q ' package/build/' <<<"$listing"; then echo "build/ is in the tarball"; ok=1; fi
  if grep -Eq ' package/deps/(cache|src)/' <<<"$listing"; then echo "deps/cache or deps/src is in the tarball"; ok=1; fi
  if grep -Eq ' package/deps/[^/]+-[^/]+/' <<<"$listing"; then echo "a deps/<platform>-<arch>/ build is in the tarball"; ok=1; fi
  local deps_files
  deps_files=$(grep ' package/deps/' <<<"$listing" | grep -Ev ' package/deps/manifest\.json$' || true)
  [ -z "$deps_files" ] || { echo "deps/ holds more than manifest.json:"; echo "$deps_files"; ok=1; }
  if grep -q '^h' <<<"$listing"; then echo "tarball has hard links (npm install drops them)"; ok=1; fi
  grep -E ' package/(prebuilds/|dist/index\.js|deps/|scripts/|binding\.gyp|native/exports)' <<<"$listing"
  echo "$(wc -l <<<"$listing") entries, $(du -k "$tgz" | cut -f1) KiB"
  return $ok
}

# The check run inside the namespace: a handshake, a 256 KiB echo and a resumption between two
# Engines, with nothing of the old stack (or a system OpenSSL) mapped.
write_runtime_check() {
  cat > "$1" <<'JS'
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const q = require('quicket');

const fail = (message) => { console.error('FAIL: ' + message); process.exit(1); };
setTimeout(() => fail('no result after 30 s'), 30000).unref();

async function main() {
  // The hiding really happened: each hidden file reads as /dev/null.
  const hidden = (process.env.HIDDEN_LIBS || '').split('\n').filter(Boolean);
  for (const file of hidden) {
    if (fs.readFileSync(file).length !== 0) fail(file + ' is not hidden');
  }
  console.log('hidden: ' + hidden.length + ' system libraries');

  const certs = process.env.CERTS;
  const read = (name) => fs.readFileSync(path.join(certs, name));
  const server = new q.Engine({
    ssl: new q.SslConfig({ alpn: ['echo'], cert: read('server.pem'), key: read('server-key.pem'), earlyData: true }),
  });
  server.on('connection', (connection) => connection.on('stream', (stream) => stream.pipe(stream)));
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = new q.Engine();
  const ssl = new q.SslConfig({ alpn: ['echo'], ca: read('ca.pem') });

  async function echo(ticket) {
    const connection = client.connect({ host: '127.0.0.1', port, servername: 'localhost', ssl, ticket });
    const tickets = [];
    connection.on('ticket', (t) => tickets.push(t));
    const payload = crypto.randomBytes(256 * 1024);
    const stream = connection.openStream();
    const chunks = [];
    const done = new Promise((resolve, reject) => {
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.end(payload);
    const handshake = await connection.handshake;
    await done;
    if (!Buffer.concat(chunks).equals(payload)) fail('the echo differs from what was sent');
    if (tickets.length === 0) await new Promise((resolve) => connection.once('ticket', (t) => resolve(tickets.push(t))));
    await connection.close();
    return { handshake, ticket: tickets[tickets.length - 1] };
  }

  const first = await echo();
  console.log('full handshake: ' + JSON.stringify(first.handshake) + ', 256 KiB echoed');
  if (first.handshake.resumed || first.handshake.alpn !== 'echo') fail('unexpected first handshake');
  const second = await echo(first.ticket);
  console.log('resumed: ' + JSON.stringify(second.handshake) + ', 256 KiB echoed');
  if (!second.handshake.resumed || second.handshake.earlyData !== 'accepted') fail('the ticket did not resume with 0-RTT');

  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const mapped = [...new Set(maps.split('\n').map((line) => line.split(/\s+/)[5]).filter(Boolean))];
  const foreign = mapped.filter((file) => /^lib(ssl|crypto|gnutls|ngtcp2|nghttp3)[^/]*\.so/.test(path.basename(file)));
  if (foreign.length > 0) fail('mapped: ' + foreign.join(', '));
  const prebuild = fs.realpathSync('node_modules/quicket/prebuilds/linux-x64');
  if (!mapped.some((file) => file.startsWith(prebuild + '/'))) fail('the prebuild in ' + prebuild + ' was not loaded');
  console.log('mapped addon: ' + mapped.filter((file) => file.endsWith('.node')).join(', '));
  console.log('no libssl/libcrypto/libgnutls/libngtcp2/libnghttp3 mapped');

  console.log('versions: ' + JSON.stringify(q.versions));
  if (!/^3\.5\./.test(q.versions.openssl)) fail('versions.openssl is ' + q.versions.openssl + ', not 3.5.x');
  await client.close();
  await server.close();
  console.log('OK');
}
main().catch((error) => fail(error.stack || String(error)));
JS
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
  # The runtime check uses the test certificates (made by the jest global setup, or here).
  bash "$ROOT/scripts/gen-certs.sh"
  local certs=$ROOT/test/fixtures/certs
  for f in ca.pem server.pem server-key.pem; do
    [ -s "$certs/$f" ] || { echo "no $certs/$f"; return 1; }
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

  # Every existing file of the old stack and of a system OpenSSL, through symlinks to the file itself.
  local hidden
  hidden=$(for f in /usr/lib/x86_64-linux-gnu/{libngtcp2*,libnghttp3*,libgnutls*,libssl.so*,libcrypto.so*}; do
    [ -e "$f" ] && realpath -e "$f"
  done | sort -u)
  echo "hiding $(wc -w <<<"$hidden") files: $(echo $hidden)"
  command -v unshare >/dev/null || {
    echo "unshare (util-linux) is not installed: cannot hide the system libraries; this step needs it"
    return 1
  }
  unshare --mount --propagation private true 2>"$TMP/unshare.err" || {
    echo "unshare --mount failed ($(cat "$TMP/unshare.err")): run as root with CAP_SYS_ADMIN; this step needs a private mount namespace"
    return 1
  }
  write_runtime_check "$app/runtime-check.js"
  PATH="$stubs:$PATH" HIDDEN_LIBS="$hidden" CERTS="$certs" \
    unshare --mount --propagation private -- bash -c '
      set -euo pipefail
      for f in $HIDDEN_LIBS; do mount --bind /dev/null "$f"; done
      exec node runtime-check.js
    '
}

# The installed tarball as a TypeScript project uses it: named ES module imports and require()
# (one instance), internal paths refused, and the published types compile for both module kinds
# (module node16, skipLibCheck off, so the .d.ts files themselves are checked).
step_consumer() {
  local app=$TMP/app
  [ -d "$app/node_modules/quicket" ] || { echo "no installed package (the install step failed)"; return 1; }
  cd "$app"
  cat > esm.mjs <<'JS'
import { Engine, SslConfig, Ticket, versions } from 'quicket';
import quicket from 'quicket';
import { createRequire } from 'node:module';
const required = createRequire(import.meta.url)('quicket');
if (typeof Engine !== 'function' || typeof SslConfig !== 'function' || typeof Ticket !== 'object') throw new Error('named imports missing');
if (required.Engine !== Engine || quicket.Engine !== Engine) throw new Error('import and require() load different instances');
for (const internal of ['quicket/dist/engine.js', 'quicket/dist/binding.js']) {
  await import(internal).then(() => { throw new Error(internal + ' is importable'); }, (error) => {
    if (error.code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw error;
  });
}
console.log('esm: named imports ok, one instance, internals refused; openssl ' + versions.openssl);
JS
  node esm.mjs
  cat > check.mts <<'TS'
import { Engine, SslConfig, type HandshakeInfo } from 'quicket';
await using engine = new Engine();
const connection = engine.connect({ host: '127.0.0.1', port: 9, ssl: new SslConfig({ alpn: ['echo'] }) });
connection.handshake.then((info: HandshakeInfo) => info.resumed, () => false);
TS
  cat > check.cts <<'TS'
import { Engine, Connection, Ticket } from 'quicket';
export const engine: Engine = new Engine();
export const connection: Connection | undefined = undefined;
export const inspect = Ticket.inspect;
TS
  cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "module": "node16", "moduleResolution": "node16", "target": "ES2022", "strict": true,
  "noEmit": true, "skipLibCheck": false, "types": ["node"], "typeRoots": ["TYPES"] }, "files": ["check.mts", "check.cts"] }
JSON
  sed -i "s|TYPES|$ROOT/node_modules/@types|" tsconfig.json
  node "$ROOT/node_modules/typescript/bin/tsc" -p tsconfig.json
  echo "types: check.mts and check.cts compile against the published declarations"
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
run "prebuild links only libc/libstdc++, exports only the N-API entry points, needs the glibc the README states" step_gyp_elf
run "cmake-js build loads" step_cmake
run "cmake-js build links only libc/libstdc++ and exports only the N-API entry points" step_cmake_elf
run "npm pack tarball contents" step_pack
run "tarball installs without a compiler; handshake, echo and resumption with the system TLS/QUIC libraries hidden" step_install
run "the installed package from ES modules, CommonJS and TypeScript (node16)" step_consumer

echo "=== summary"
printf '%s' "$summary"
exit "$failed"
