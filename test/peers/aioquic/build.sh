#!/usr/bin/env bash
# Builds the aioquic interop peer (test/peers/aioquic/peer.py) into build-peers/aioquic/, without
# PyPI and without touching the system's Python packages:
# - aioquic 1.3.0 and pylsqpack 0.3.23 from Debian's upstream tarballs (the sid source packages'
#   .orig.tar.gz), their C extensions compiled against bookworm's python3-dev with the sources,
#   macros and flags their setup.py declares (bookworm's setuptools 66 rejects their pyproject's
#   SPDX license string, so setup.py itself cannot run);
# - aioquic's runtime dependencies that bookworm has too old (cryptography >= 42, pyOpenSSL >= 24,
#   service-identity >= 24.1 and what those need) from trixie's binary .debs, unpacked with
#   dpkg -x into build-peers/aioquic/site. cryptography's _rust.abi3.so needs GLIBC_2.34 and
#   OPENSSL_3.0.0 at most (bookworm: glibc 2.36, OpenSSL 3.0), and bookworm's python3-cffi-backend.
# Every download is pinned by sha256 and cached in build-peers/aioquic/cache. The result is
# build-peers/aioquic-python, a wrapper that runs /usr/bin/python3 with PYTHONPATH set to it (the
# tests run `build-peers/aioquic-python test/peers/aioquic/peer.py ...`).
# Idempotent (a warm run only checks hashes); without python3-dev, gcc or the network it prints
# why and exits 0.
set -euo pipefail
cd "$(dirname "$0")/../../.."
repo="$PWD"
out="$repo/build-peers"
work="$out/aioquic"
cache="$work/cache"
mirror="${AIOQUIC_PEER_MIRROR:-http://deb.debian.org/debian}"
python=/usr/bin/python3

skip() {
  echo "peers: aioquic skipped ($1)"
  exit 0
}

[ -x "$python" ] || skip "no $python"
command -v gcc >/dev/null || skip "no gcc"
command -v dpkg >/dev/null || skip "no dpkg"
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$include/Python.h" ] || skip "no $include/Python.h; apt-get install python3-dev"
[ -f /usr/include/openssl/evp.h ] || skip "no OpenSSL headers; apt-get install libssl-dev"
"$python" -c 'import _cffi_backend' 2>/dev/null || skip "no _cffi_backend; apt-get install python3-cffi-backend"

# path in the mirror, sha256 (from sid's Sources and trixie's Packages indexes)
FILES="
pool/main/a/aioquic/aioquic_1.3.0.orig.tar.gz 28d070b2183e3e79afa9d4e7bd558960d0d53aeb98bc0cf0a358b279ba797c92
pool/main/p/pylsqpack/pylsqpack_0.3.23.orig.tar.gz f55b126940d8b3157331f123d4428d703a698a6db65a6a7891f7ec1b90c86c56
pool/main/p/python-cryptography/python3-cryptography_43.0.0-3+deb13u1_amd64.deb edfc3aab6cbc4941aa19798059867696eeae90eb41b6dc2c5197c521da548972
pool/main/p/pyopenssl/python3-openssl_25.0.0-1+deb13u1_all.deb c5487d811afd22921820e7cb38d2c6bc7e9a2428d9ce34c60738c36e0d7b1fa4
pool/main/p/python-service-identity/python3-service-identity_24.2.0-1_all.deb 1159aede58a157a7fb9d48c2d28d45146686a3fffbc4a10664dcc1f13dc921dd
pool/main/p/python-typing-extensions/python3-typing-extensions_4.13.2-1_all.deb b67662f211c35c17c74a0725bc7c8ffc3b126c650e2a2525593adee06f2bbf69
pool/main/p/python-attrs/python3-attr_25.3.0-1_all.deb 72cee7fff9e57e8410956e3071ffe910d9de14ddedf14d598a616319428b369c
pool/main/p/pyasn1/python3-pyasn1_0.6.1-1+deb13u3_all.deb 1c2bb19f7ec957bba4b0a42cecf6a3523e79fb20fb042d99c921e5a038e9d979
pool/main/p/python-pyasn1-modules/python3-pyasn1-modules_0.4.1-2_all.deb 8a14b25b6e51aa5d4b931a211ed5002a0fa6c5c19fa4065c6a639ddb1c496fa7
pool/main/p/python-certifi/python3-certifi_2025.1.31+ds-1_all.deb 939b1a979218ec23b5f9469e2ad8a809de588f586bbaf3292b4e617d987824bd
"
[ "$(uname -m)" = x86_64 ] || skip "the pinned cryptography .deb is amd64 only"

mkdir -p "$cache"
stamp=$(echo "$FILES" | sha256sum | cut -c1-16)
if [ -f "$work/stamp" ] && [ "$(cat "$work/stamp")" = "$stamp" ] && [ -x "$out/aioquic-python" ]; then
  echo "peers: aioquic up to date ($out/aioquic-python)"
  exit 0
fi

echo "$FILES" | while read -r path sum; do
  [ -n "$path" ] || continue
  file="$cache/$(basename "$path")"
  if ! [ -f "$file" ] || ! echo "$sum  $file" | sha256sum -c --quiet - 2>/dev/null; then
    curl -fsSL --retry 3 -o "$file.part" "$mirror/$path" || { echo "peers: aioquic: cannot download $mirror/$path" >&2; exit 3; }
    echo "$sum  $file.part" | sha256sum -c --quiet - || { echo "peers: aioquic: sha256 mismatch for $path" >&2; exit 3; }
    mv -f "$file.part" "$file"
  fi
done || skip "downloads failed"

site="$work/site.tmp"
rm -rf "$site" "$work/src" "$work/debs"
mkdir -p "$site" "$work/src" "$work/debs"
for deb in "$cache"/*.deb; do dpkg -x "$deb" "$work/debs"; done
cp -r "$work/debs/usr/lib/python3/dist-packages/." "$site/"
tar -xzf "$cache/aioquic_1.3.0.orig.tar.gz" -C "$work/src"
tar -xzf "$cache/pylsqpack_0.3.23.orig.tar.gz" -C "$work/src"

# The extensions as setup.py builds them: Py_LIMITED_API 3.10 (abi3), -std=c99.
cflags=(-shared -fPIC -O2 -std=c99 -DPy_LIMITED_API=0x030A0000 "-I$include")
lsq="$work/src/pylsqpack-0.3.23"
cp -r "$lsq/src/pylsqpack" "$site/"
gcc "${cflags[@]}" -I"$lsq/vendor/ls-qpack" -I"$lsq/vendor/ls-qpack/deps/xxhash" \
  "$lsq/src/pylsqpack/binding.c" "$lsq/vendor/ls-qpack/lsqpack.c" "$lsq/vendor/ls-qpack/deps/xxhash/xxhash.c" \
  -o "$site/pylsqpack/_binding.abi3.so"
aq="$work/src/aioquic-1.3.0"
cp -r "$aq/src/aioquic" "$site/"
gcc "${cflags[@]}" "$aq/src/aioquic/_buffer.c" -o "$site/aioquic/_buffer.abi3.so"
gcc "${cflags[@]}" "$aq/src/aioquic/_crypto.c" -lcrypto -o "$site/aioquic/_crypto.abi3.so"
find "$site" -name '*.c' -delete

PYTHONPATH="$site" "$python" -s -c 'import aioquic.asyncio, aioquic.h3.connection, pylsqpack, cryptography
assert aioquic.__version__ == "1.3.0" and cryptography.__version__ == "43.0.0", (aioquic.__version__, cryptography.__version__)'
rm -rf "$work/site" "$work/debs"
mv "$site" "$work/site"

cat >"$out/aioquic-python.tmp" <<SH
#!/bin/sh
# Generated by test/peers/aioquic/build.sh: Python with aioquic 1.3.0 and trixie's cryptography 43,
# private to build-peers/. Usage: aioquic-python test/peers/aioquic/peer.py server|client ...
PYTHONPATH="$(cd "$work/site" && pwd -P)" exec $python -s "\$@"
SH
chmod +x "$out/aioquic-python.tmp"
mv -f "$out/aioquic-python.tmp" "$out/aioquic-python"
echo "$stamp" >"$work/stamp"
echo "peers: built $out/aioquic-python"
