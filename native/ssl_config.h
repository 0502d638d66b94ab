// SslConfig: GnuTLS credentials, ALPN, session-ticket key and 0-RTT policy, loaded once and shared
// by every connection that uses them (loading the system CA store costs milliseconds).
#pragma once

#include <gnutls/gnutls.h>

#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace quicket {

// The C++ state behind a JS SslConfig. Connections keep a shared_ptr to it, so it outlives the
// JS object if a connection is still using it.
class SslContext {
 public:
  SslContext();
  ~SslContext();
  SslContext(const SslContext&) = delete;
  SslContext& operator=(const SslContext&) = delete;

  gnutls_certificate_credentials_t credentials() const { return credentials_; }
  const std::vector<std::string>& alpn() const { return alpn_; }
  bool has_certificate() const { return has_certificate_; }
  bool reject_unauthorized() const { return reject_unauthorized_; }
  bool early_data() const { return early_data_; }
  unsigned ticket_lifetime() const { return ticket_lifetime_; }
  const std::string& ticket_keys() const { return ticket_keys_; }
  gnutls_anti_replay_t anti_replay() const { return anti_replay_; }
  gnutls_priority_t priority() const { return priority_; }

  void set_alpn(std::vector<std::string> alpn) { alpn_ = std::move(alpn); }
  void set_reject_unauthorized(bool value) { reject_unauthorized_ = value; }
  void set_early_data(bool value) { early_data_ = value; }
  void set_ticket_lifetime(unsigned seconds) { ticket_lifetime_ = seconds; }
  void set_ticket_keys(std::string keys) { ticket_keys_ = std::move(keys); }
  void set_anti_replay_window(unsigned milliseconds);

  // Each returns an empty string on success, else GnuTLS's description of the failure.
  std::string LoadKeyPair(const std::string& cert_pem, const std::string& key_pem);
  std::string AddTrustedPem(const std::string& ca_pem);
  std::string UseSystemTrust();

 private:
  // GnuTLS's anti-replay database callback: refuses a ClientHello whose key was seen before.
  static int AddReplayEntry(void* self, time_t expires, const gnutls_datum_t* key,
                            const gnutls_datum_t* data);

  gnutls_certificate_credentials_t credentials_ = nullptr;
  gnutls_anti_replay_t anti_replay_ = nullptr;
  gnutls_priority_t priority_ = nullptr;  // parsed once, not per connection
  std::unordered_map<std::string, time_t> replay_seen_;
  time_t replay_next_purge_ = 0;
  std::vector<std::string> alpn_;
  std::string ticket_keys_;
  bool has_certificate_ = false;
  bool reject_unauthorized_ = true;
  bool early_data_ = false;
  unsigned ticket_lifetime_ = 7200;
};

class SslConfig : public Napi::ObjectWrap<SslConfig> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit SslConfig(const Napi::CallbackInfo& info);

  const std::shared_ptr<SslContext>& context() const { return context_; }
  static SslConfig* FromValue(const Napi::Value& value);

 private:
  Napi::Value GetTicketKeys(const Napi::CallbackInfo& info);

  std::shared_ptr<SslContext> context_;
};

}  // namespace quicket
