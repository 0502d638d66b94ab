// AddressValidation: a server's proof that a client owns its address (RFC 9000 8.1), without state.
// Retry tokens (answering an Initial, good for one handshake) and NEW_TOKEN tokens (sent after a
// handshake, kept by the client in its ticket for the next connection) are AEAD-sealed under one
// engine secret and bound to the client's IP address and a time, so any process holding the same
// secret (a restart, a reusePort worker) accepts them. Also builds the stateless packets an engine
// sends instead of creating a connection: Retry, and CONNECTION_CLOSE to refuse one.
#pragma once

#include <ngtcp2/ngtcp2.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace quicket {

// What a server connection learns from the Initial that created it.
struct ValidatedAddress {
  ngtcp2_token_type token_type = NGTCP2_TOKEN_TYPE_UNKNOWN;  // RETRY or NEW_TOKEN once validated
  bool retried = false;
  ngtcp2_cid original_dcid{};  // the client's first DCID, before our Retry
};

class AddressValidation {
 public:
  enum class Verdict { kNoToken, kValidated, kInvalidRetryToken };
  static constexpr uint64_t kRetryTokenLifetimeMs = 10000;
  static constexpr uint64_t kNewTokenLifetimeMs = 2 * 3600 * 1000;  // as long as a default ticket
  static constexpr size_t kSecretLength = 32;

  // `key`: 32 bytes (the engine's stateless reset key); tokens use a secret derived from it.
  void SetKey(const uint8_t* key, size_t length);
  // How long a token verifies after it was made (the engine's retryTokenExpiration, tokenExpiration).
  void SetLifetimes(uint64_t retry_token_ms, uint64_t new_token_ms) {
    retry_token_lifetime_ms_ = retry_token_ms;
    new_token_lifetime_ms_ = new_token_ms;
  }

  // Checks an Initial's token. A NEW_TOKEN token that does not verify (another address, expired,
  // garbage) counts as no token (RFC 9000 8.1.3); a Retry token that does not is refused (8.1.2).
  Verdict Check(const ngtcp2_pkt_hd& initial, const sockaddr* remote, ValidatedAddress* out) const;

  // A Retry packet for `initial` into `packet` (at least NGTCP2_MAX_UDP_PAYLOAD_SIZE bytes); its length, or 0.
  size_t WriteRetry(const ngtcp2_pkt_hd& initial, const sockaddr* remote, uint8_t* packet, size_t capacity) const;
  // A NEW_TOKEN token for `remote`, or "" on failure.
  std::string MakeNewToken(const sockaddr* remote) const;

  // A CONNECTION_CLOSE answering `initial` without creating a connection; its length, or 0.
  static size_t WriteRefusal(const ngtcp2_pkt_hd& initial, uint64_t error_code, const std::string& reason,
                             uint8_t* packet, size_t capacity);

 private:
  uint8_t secret_[kSecretLength] = {};
  uint64_t retry_token_lifetime_ms_ = kRetryTokenLifetimeMs;
  uint64_t new_token_lifetime_ms_ = kNewTokenLifetimeMs;
};

}  // namespace quicket
