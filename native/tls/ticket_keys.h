// TicketKeyRing: the server's session-ticket keys in node:tls's 48-byte layout (16-byte name,
// 16-byte HMAC-SHA256 secret, 16-byte AES-128 key), newest first. The newest encrypts new tickets;
// every key decrypts, and a ticket under an older key is renewed, so a rotation costs no client a
// full handshake. Immutable once built: a rotation swaps the whole ring, and connections that are
// mid-handshake keep the ring they started with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace quicket {

class TicketKeyRing {
 public:
  static constexpr size_t kKeyLength = 48;
  static constexpr size_t kNameLength = 16;
  static constexpr size_t kSecretLength = 16;
  static constexpr size_t kAesKeyLength = 16;

  struct Key {
    uint8_t name[kNameLength];
    uint8_t hmac_secret[kSecretLength];
    uint8_t aes_key[kAesKeyLength];
  };

  // `keys` are the 48-byte keys, newest first (checked by the caller). Empty: one random key.
  static std::shared_ptr<const TicketKeyRing> Make(const std::vector<std::string>& keys);

  const Key& newest() const { return keys_.front(); }
  // The key a ticket names, or nullptr; `*is_newest` tells whether it is the encrypting one.
  const Key* Find(const uint8_t* name, bool* is_newest) const;
  // The newest key, 48 bytes, as getTicketKeys() returns it.
  std::string NewestBytes() const;

 private:
  std::vector<Key> keys_;
};

}  // namespace quicket
