// The TLS library's process-wide setup and the few primitives the rest of the core needs from it
// (randomness, a digest), so nothing outside tls/ includes OpenSSL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace quicket {

// Once per process, before any other TLS call: OpenSSL without its config file (the addon must
// not depend on the machine's openssl.cnf), and ngtcp2's OpenSSL backend.
bool InitCrypto();

// Cryptographically secure random bytes (connection IDs, secrets, ngtcp2's rand callback).
// False only if the system's entropy source failed.
[[nodiscard]] bool RandomBytes(uint8_t* out, size_t length);

std::string Sha256(const std::string& bytes);

// "3.5.7": the OpenSSL linked into the addon.
const char* OpenSslVersion();

}  // namespace quicket
