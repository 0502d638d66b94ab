// TlsContext: the TLS side of one SslConfig, an OpenSSL SSL_CTX loaded once and shared by every
// connection that uses it: certificate chain and key, trusted roots, ALPN, groups, ticket policy,
// 0-RTT policy and anti-replay window. Connections keep a shared_ptr, so it outlives the JS
// SslConfig while a connection still uses it. No OpenSSL type leaves tls/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "anti_replay.h"
#include "replay_store.h"
#include "session_cache.h"

struct ssl_ctx_st;

namespace quicket {

struct TlsContextOptions {
  std::vector<std::string> alpn;            // preference order
  std::string cert_pem;                     // server chain (leaf first), with key_pem
  std::string key_pem;
  std::vector<std::string> ca_pems;         // roots that verify the peer, given as `ca`
  std::vector<std::string> default_roots;   // without `ca`: node:tls's default roots
  std::string groups;                       // OpenSSL group list; empty: quicket's default
  bool reject_unauthorized = true;
  bool early_data = false;
  unsigned ticket_lifetime = 7200;          // seconds
  uint64_t anti_replay_window_ms = AntiReplay::kMinWindowMs;
  std::shared_ptr<ReplayStore> replay_store;  // `antiReplayStore`; null: the process's AntiReplay
};

// Why a TlsContext could not be made: the caller maps the kind to its own error codes.
struct TlsContextError {
  enum class Kind { kNone, kKeyMaterial, kGroups, kLibrary };
  Kind kind = Kind::kNone;
  std::string message;  // OpenSSL's wording, e.g. "cannot load cert/key: ..."
};

class TlsContext {
 public:
  // nullptr and `*error` filled in when OpenSSL refuses the options.
  static std::shared_ptr<TlsContext> Make(const TlsContextOptions& options, TlsContextError* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* native() const { return ctx_; }
  const std::vector<std::string>& alpn() const { return alpn_; }
  // ALPN names in TLS wire format (RFC 7301: each prefixed by its length).
  static std::string AlpnWire(const std::vector<std::string>& alpn);
  const std::string& client_groups() const { return client_groups_; }
  bool has_certificate() const { return has_certificate_; }
  bool reject_unauthorized() const { return reject_unauthorized_; }
  bool early_data() const { return early_data_; }
  uint64_t anti_replay_window_ms() const { return anti_replay_window_ms_; }
  ReplayStore& replay_store() const { return *replay_store_; }
  // Client sessions of tickets this context issued, for connect() to skip decoding them.
  SessionCache& session_cache() { return session_cache_; }
  // Keylog lines are formatted by OpenSSL only once some connection asked for them.
  void EnableKeylog();
  // Before the first client session: the default roots, if this context uses them, are attached
  // only now (a server never needs them).
  void PrepareForClients();

 private:
  explicit TlsContext(const TlsContextOptions& options);
  TlsContextError Configure(const TlsContextOptions& options);
  std::string LoadKeyPair(const std::string& cert_pem, const std::string& key_pem);

  ssl_ctx_st* ctx_ = nullptr;
  std::vector<std::string> alpn_;
  std::vector<std::string> default_roots_;  // until PrepareForClients() attaches them
  std::string client_groups_;
  uint64_t anti_replay_window_ms_;
  std::shared_ptr<ReplayStore> replay_store_;
  SessionCache session_cache_;
  bool has_certificate_ = false;
  bool reject_unauthorized_ = true;
  bool early_data_ = false;
  bool keylog_enabled_ = false;
};

}  // namespace quicket
