#include "ticket_keys.h"

#include <cstring>

#include "crypto.h"

namespace quicket {

std::shared_ptr<const TicketKeyRing> TicketKeyRing::Make(const std::vector<std::string>& keys) {
  auto ring = std::make_shared<TicketKeyRing>();
  static_assert(sizeof(Key) == kKeyLength, "Key is node:tls's 48-byte layout");
  for (const auto& bytes : keys) {
    Key key;
    memcpy(&key, bytes.data(), kKeyLength);
    ring->keys_.push_back(key);
  }
  if (ring->keys_.empty()) {
    Key key;
    if (!RandomBytes(reinterpret_cast<uint8_t*>(&key), sizeof(key))) return nullptr;
    ring->keys_.push_back(key);
  }
  return ring;
}

const TicketKeyRing::Key* TicketKeyRing::Find(const uint8_t* name, bool* is_newest) const {
  for (size_t i = 0; i < keys_.size(); i++) {
    if (memcmp(keys_[i].name, name, kNameLength) == 0) {
      *is_newest = i == 0;
      return &keys_[i];
    }
  }
  return nullptr;
}

std::string TicketKeyRing::NewestBytes() const {
  return std::string(reinterpret_cast<const char*>(&keys_.front()), kKeyLength);
}

}  // namespace quicket
