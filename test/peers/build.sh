#!/usr/bin/env bash
# Builds the interop peer programs in test/peers/ into build-peers/ (git ignores it; node-gyp rebuilds wipe build/), offline:
# quinn with cargo against Debian's crates (test/peers/quinn/build.sh); the quiche peer needs no build (npm ci installs its binding);
# quic-go in GOPATH mode against the sources Debian installs under /usr/share/gocode
# (golang-go and golang-github-lucas-clemente-quic-go-dev, from bookworm-backports; setup.sh
# installs them). A peer whose toolchain is missing is skipped with a line saying so; the interop
# tests then skip it, or fail under CI=true.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$PWD/build-peers"
mkdir -p "$out"

if command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/quic-go/quic-go ]; then
  gopath="$out/gopath"
  mkdir -p "$gopath/src/quicket-peers"
  ln -sfn "$PWD/test/peers/quic-go" "$gopath/src/quicket-peers/quic-go"
  (cd "$gopath/src/quicket-peers/quic-go" &&
    GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOCACHE="$out/go-cache" \
      go build -o "$out/quic-go-peer" .)
  echo "peers: built $out/quic-go-peer"
else
  echo "peers: quic-go skipped (no go, or no quic-go sources in /usr/share/gocode)"
fi

# quinn (Rust, rustls 0.20), offline against the crates Debian installs under /usr/share/cargo/registry.
bash test/peers/quinn/build.sh

# aioquic (Python, its own TLS 1.3): Debian's orig tarballs and trixie's cryptography 43, sha256-pinned,
# into build-peers/aioquic (test/peers/aioquic/build.sh).
bash test/peers/aioquic/build.sh
