// Stateless reset tokens (RFC 9000 10.3): HMAC-SHA256 of the connection ID under a key derived
// from the engine's statelessResetKey, truncated to 16 bytes. Endpoints that share the key (a
// restarted server, the members of a cluster) compute the same token for a connection ID.
#pragma once

#include <cstddef>
#include <cstdint>

struct evp_mac_ctx_st;

namespace quicket {

class ResetTokens {
 public:
  static constexpr size_t kTokenLength = 16;

  ResetTokens() = default;
  ~ResetTokens();
  ResetTokens(const ResetTokens&) = delete;
  ResetTokens& operator=(const ResetTokens&) = delete;

  // Keys the generator from the engine's 32-byte secret; false if OpenSSL could not.
  [[nodiscard]] bool SetKey(const uint8_t* secret, size_t length);
  // The token for a connection ID into out (kTokenLength bytes); false if not keyed.
  [[nodiscard]] bool Generate(const uint8_t* cid, size_t cid_length, uint8_t* out) const;

 private:
  // Keyed once: each token restarts from its precomputed HMAC state. ngtcp2's HKDF-based
  // generator ran the whole extract-and-expand per token, 8 tokens per connection (5% of a
  // server's CPU per handshake).
  evp_mac_ctx_st* mac_ = nullptr;
};

}  // namespace quicket
