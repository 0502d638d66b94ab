// SessionCache: the client sessions a TlsContext recently handed out as tickets, kept decoded.
// A ticket given back to connect() carries the same bytes; taking its session from here spares
// OpenSSL parsing it again, the server's certificate chain included (about 40 µs, the largest
// part of connect() with a ticket). Each entry is taken by one connection only (clients use a
// TLS 1.3 ticket once, RFC 8446 §C.4); a ticket used again, or issued in another process, is
// decoded as before. Bounded: the oldest entry makes room.
//
// Used on its TlsContext's JS thread only (connections never share a context across threads).
#pragma once

#include <string>
#include <vector>

struct ssl_session_st;

namespace quicket {

class SessionCache {
 public:
  SessionCache() = default;
  ~SessionCache();
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  // Keeps a copy of `session`, which was serialised as `der`. A copy: OpenSSL marks the session
  // of a connection that ends without close_notify (every QUIC connection) not resumable.
  void Put(const std::string& der, const ssl_session_st* session);
  // The session serialised as `der` (the caller owns the reference), or null.
  ssl_session_st* Take(const std::string& der);

 private:
  static constexpr size_t kMaxEntries = 32;
  struct Entry {
    std::string der;
    ssl_session_st* session;
  };
  std::vector<Entry> entries_;  // oldest first
};

}  // namespace quicket
