#!/usr/bin/env bash
# Installs what quicket needs on Debian 12 (bookworm): the tools that build the vendored native
# stack (OpenSSL 3.5, ngtcp2, nghttp3 from pinned tarballs, scripts/build-deps.js), the interop
# peers the tests use, then npm packages, the vendored stack and the addon.
# Idempotent: safe to run again. Must run as root (or with sudo available) on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools (perl for OpenSSL's Configure, xz for ngtcp2's tarballs, apt for Debian's source
# archive), openssl's CLI for the test certificates, strace (a test proves the addon reads no
# OpenSSL config file), and ngtcp2's own GnuTLS example client and
# server from bookworm-backports: an interop peer on another TLS library, never linked into quicket.
# Go and Debian's quic-go sources (also bookworm-backports) build our quic-go interop peer offline
# (test/peers/build.sh).
# cargo and Debian's quinn crates (bookworm) build the quinn interop peer offline too.
# python3-dev, python3-cffi-backend and libssl-dev build and run the aioquic peer (test/peers/aioquic/build.sh).
DEB_PACKAGES="g++ make cmake perl python3 tar xz-utils openssl strace ngtcp2-client ngtcp2-server golang-go golang-github-lucas-clemente-quic-go-dev cargo librust-quinn-dev librust-rustls-pemfile-dev librust-tokio-dev python3-dev python3-cffi-backend libssl-dev"

manual_help() {
  cat >&2 <<'MSG'
quicket's setup script only automates Debian 12 (bookworm). On another Linux, install a C++17
compiler, make, cmake, perl, xz and Node.js >= 20, then run `npm ci && npm run build`: the build
fetches the pinned OpenSSL, ngtcp2 and nghttp3 tarballs from their upstream release URLs (or a
folder named by QUICKET_DEPS_CACHE) and builds them statically (node scripts/build-deps.js).
  Debian/Ubuntu: apt-get install g++ make cmake perl xz-utils
(macOS is not supported yet: the UDP layer uses Linux socket options.)
MSG
  exit 1
}

. /etc/os-release 2>/dev/null || manual_help
if [ "${ID:-}" != "debian" ] || [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  echo "setup.sh: this is ${PRETTY_NAME:-an unknown system}, not Debian 12." >&2
  manual_help
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root (apt-get needs it)" >&2; exit 1; }
  SUDO="sudo"
fi

have_all_packages() {
  for p in $DEB_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
  done
}

# The backports entry reuses the mirror URI of the system's own Debian source.
debian_mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3 ~ /^bookworm/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "setup.sh: cannot find the system's Debian mirror in apt sources" >&2; exit 1; }
  echo "$uri"
}

if ! have_all_packages; then
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror=$(debian_mirror)
    echo "setup.sh: adding bookworm-backports from $mirror"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" | $SUDO tee /etc/apt/sources.list.d/quicket-backports.sources >/dev/null
  fi
  $SUDO apt-get update -q
  # ngtcp2-server ships a systemd unit; nothing here starts it and quicket never relies on it.
  # The peers' shared libraries (libngtcp2, GnuTLS) come with them; quicket.node links none.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t bookworm-backports $DEB_PACKAGES
fi

# Dependencies only: the addon itself is built once, below (the install script would build it again).
npm ci --no-audit --no-fund --ignore-scripts
# The vendored native stack, once per platform (rebuilt only when deps/manifest.json changes).
node scripts/build-deps.js
npm run build
# The interop peers (test/peers/): built into build-peers/, used by the interop tests.
bash test/peers/build.sh
