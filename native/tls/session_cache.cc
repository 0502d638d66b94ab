#include "session_cache.h"

#include <openssl/ssl.h>

namespace quicket {

SessionCache::~SessionCache() {
  for (Entry& entry : entries_) SSL_SESSION_free(entry.session);
}

void SessionCache::Put(const std::string& der, const ssl_session_st* session) {
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (!copy) return;  // only an optimisation: the ticket still decodes
  if (entries_.size() >= kMaxEntries) {
    SSL_SESSION_free(entries_.front().session);
    entries_.erase(entries_.begin());
  }
  entries_.push_back({der, copy});
}

SSL_SESSION* SessionCache::Take(const std::string& der) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->der == der) {
      SSL_SESSION* session = it->session;
      entries_.erase(it);
      return session;
    }
  }
  return nullptr;
}

}  // namespace quicket
