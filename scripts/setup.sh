#!/usr/bin/env bash
# Installs what quicket needs on Debian 12 (bookworm), then installs npm packages and builds.
# Idempotent: safe to run again. Must run as root (or with sudo available) on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES="libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev libgnutls28-dev ngtcp2-client ngtcp2-server pkg-config cmake g++ make python3 openssl"

manual_help() {
  cat >&2 <<'MSG'
quicket's setup script only automates Debian 12 (bookworm). Install these by hand, then run
`npm ci && npm run build`:
  Debian/Ubuntu (ngtcp2 >= 1.11, nghttp3 >= 1.8, GnuTLS >= 3.7):
    apt-get install libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev libgnutls28-dev \
                    ngtcp2-client ngtcp2-server pkg-config cmake g++ make python3
  macOS (Homebrew):
    brew install libngtcp2 libnghttp3 gnutls pkg-config cmake
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
  # The bookworm (non-backports) ngtcp2 is too old: require the 1.x API.
  pkg-config --atleast-version=1.11 libngtcp2 2>/dev/null || return 1
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
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t bookworm-backports $DEB_PACKAGES
fi

# Dependencies only: the addon itself is built once, below (the install script would build it again).
npm ci --no-audit --no-fund --ignore-scripts
npm run build
