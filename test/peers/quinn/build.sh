#!/usr/bin/env bash
# Builds the quinn interop peer (test/peers/quinn) into build-peers/quinn-peer, offline: cargo's
# crates.io source is replaced by the crates Debian installs under /usr/share/cargo/registry
# (librust-quinn-dev and friends; see README.md). Sources are copied to build-peers/quinn/src-copy
# so cargo writes its Cargo.lock there, not into the repo. Idempotent; a warm run takes about a
# second. Without cargo or the Debian crates it prints why and exits 0.
set -euo pipefail
cd "$(dirname "$0")/../../.."
repo="$PWD"
out="$repo/build-peers"
registry=/usr/share/cargo/registry

skip() {
  echo "peers: quinn skipped ($1)"
  exit 0
}

# Any cargo will do: rustup's (on PATH or in ~/.cargo/bin), else Debian's (the crates were
# packaged for its 1.63). QUINN_PEER_CARGO overrides.
cargo="${QUINN_PEER_CARGO:-}"
if [ -z "$cargo" ]; then
  for candidate in "$(command -v cargo || true)" "${HOME:-/root}/.cargo/bin/cargo" /usr/bin/cargo; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
      cargo="$candidate"
      break
    fi
  done
fi
[ -n "$cargo" ] || skip "no cargo"
for crate in quinn-0.9 quinn-proto-0.9 rustls-0.20 rustls-pemfile-1 ring-0.16 tokio-1 bytes-1 signal-hook-registry-1; do
  compgen -G "$registry/$crate.*" >/dev/null || skip "no $crate.* in $registry; apt-get install librust-quinn-dev librust-rustls-pemfile-dev librust-tokio-dev"
done

work="$out/quinn"
mkdir -p "$work/cargo-home" "$work/src-copy/src"
cat >"$work/cargo-home/config.toml" <<TOML
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$registry"

[net]
offline = true
TOML
# cp -p keeps mtimes, so cargo rebuilds only what changed. The lockfile is made afresh each time
# (resolving against the local directory takes milliseconds), so a cargo of another version never
# meets a lockfile format it cannot read.
src="$repo/test/peers/quinn"
rm -rf "$work/src-copy/src"
mkdir -p "$work/src-copy/src"
cp -p "$src/Cargo.toml" "$work/src-copy/"
cp -p "$src"/src/*.rs "$work/src-copy/src/"
rm -f "$work/src-copy/Cargo.lock"

CARGO_HOME="$work/cargo-home" CARGO_TARGET_DIR="$work/target" \
  "$cargo" build --release --offline --quiet --manifest-path "$work/src-copy/Cargo.toml"
cp -p "$work/target/release/quinn-peer" "$out/quinn-peer.tmp"
mv -f "$out/quinn-peer.tmp" "$out/quinn-peer"
echo "peers: built $out/quinn-peer"
