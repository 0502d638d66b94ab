#!/usr/bin/env bash
# Generates the test certificates in test/fixtures/certs/ (gitignored). Idempotent: does nothing
# when every file exists, verifies against its CA and is not about to expire.
#   ca.pem / ca-key.pem                  test CA
#   server.pem / server-key.pem          signed by ca; SAN localhost, 127.0.0.1, ::1
#   wrong-name.pem / wrong-name-key.pem  signed by ca; SAN only wrong.example
#   other-ca.pem / other-ca-key.pem      an unrelated CA
#   other-server.pem / other-server-key.pem  signed by other-ca; same SANs as server.pem
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=test/fixtures/certs
SAN_OK="DNS:localhost,IP:127.0.0.1,IP:::1"

command -v openssl >/dev/null || { echo "gen-certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"

# Serialize concurrent runs (e.g. two test runs starting together).
if command -v flock >/dev/null; then exec 9>.lock; flock 9; fi

# valid CERT CA: the cert and its key exist and match, it chains to CA and is valid for a day more.
valid() {
  local cert=$1 ca=$2 key=${1%.pem}-key.pem
  [ -s "$cert" ] && [ -s "$key" ] && [ -s "$ca" ] || return 1
  openssl x509 -in "$cert" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  openssl verify -CAfile "$ca" "$cert" >/dev/null 2>&1 || return 1
  [ "$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]
}

if valid ca.pem ca.pem && valid server.pem ca.pem && valid wrong-name.pem ca.pem &&
   valid other-ca.pem other-ca.pem && valid other-server.pem other-ca.pem; then
  exit 0
fi
echo "gen-certs.sh: generating test certificates in $DIR"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME CN: self-signed CA, 10 years.
ca() {
  newkey "$1-key.pem"
  openssl req -x509 -new -key "$1-key.pem" -out "$1.pem" -days 3650 -subj "/O=quicket tests/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
}

# leaf NAME CA CN SAN: server certificate signed by CA, 825 days.
leaf() {
  newkey "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/O=quicket tests/CN=$3" |
    openssl x509 -req -CA "$2.pem" -CAkey "$2-key.pem" -set_serial "0x$(openssl rand -hex 16)" \
      -days 825 -out "$1.pem" -extfile <(printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" \
        "subjectKeyIdentifier=hash" \
        "authorityKeyIdentifier=keyid" \
        "subjectAltName=$4") 2>/dev/null
}

ca ca "quicket test CA"
leaf server ca localhost "$SAN_OK"
leaf wrong-name ca wrong.example "DNS:wrong.example"
ca other-ca "quicket other test CA"
leaf other-server other-ca localhost "$SAN_OK"

valid server.pem ca.pem && valid wrong-name.pem ca.pem && valid other-server.pem other-ca.pem ||
  { echo "gen-certs.sh: generated certificates do not verify" >&2; exit 1; }
