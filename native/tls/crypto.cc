#include "crypto.h"

#include <ngtcp2/ngtcp2_crypto_ossl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <pthread.h>

#include <cstring>
#include <mutex>

// Node's own headers carry OpenSSL 3.0 (/usr/include/node/openssl): compiling against them would
// silently build the wrong library's ABI into the addon.
#if OPENSSL_VERSION_NUMBER < 0x30500000L
#error "quicket needs the vendored OpenSSL >= 3.5 headers first on the include path (scripts/build-deps.js)"
#endif

namespace quicket {

bool InitCrypto() {
  static bool ok = false;
  static std::once_flag once;
  std::call_once(once, [] {
    // NO_ATEXIT: Node tears environments down on its own schedule; OpenSSL's global state must
    // outlive every engine's cleanup hook, so it is left to the process exit.
    uint64_t options = OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT;
    ok = OPENSSL_init_ssl(options, nullptr) == 1 && ngtcp2_crypto_ossl_init() == 0;
  });
  return ok;
}

namespace {
// Small requests (connection IDs, IVs, nonces: a dozen per handshake) are served from a per-thread
// pool that OpenSSL refills 512 bytes at a time: its per-call cost (DRBG lock, fork check) was
// larger than the bytes' own. Bytes handed out are wiped from the pool, and a forked child starts
// with an empty one, so no two callers ever get the same bytes.
constexpr size_t kPoolSize = 512;
constexpr size_t kPooledMax = 64;
struct RandomPool {
  uint8_t bytes[kPoolSize];
  size_t used = kPoolSize;  // empty
};
thread_local RandomPool pool;

void EmptyPoolInChild() { pool.used = kPoolSize; }
}  // namespace

bool RandomBytes(uint8_t* out, size_t length) {
  if (length > kPooledMax) return RAND_bytes(out, static_cast<int>(length)) == 1;
  static std::once_flag fork_hook;
  std::call_once(fork_hook, [] { pthread_atfork(nullptr, nullptr, EmptyPoolInChild); });
  if (kPoolSize - pool.used < length) {
    if (RAND_bytes(pool.bytes, kPoolSize) != 1) return false;
    pool.used = 0;
  }
  memcpy(out, pool.bytes + pool.used, length);
  OPENSSL_cleanse(pool.bytes + pool.used, length);
  pool.used += length;
  return true;
}

std::string Sha256(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), length);
}

const char* OpenSslVersion() { return OpenSSL_version(OPENSSL_VERSION_STRING); }

}  // namespace quicket
