// SslConfig: the JS face of a TlsContext (certificates, roots, ALPN, 0-RTT policy) and of the
// ticket keys a server starts with. Loaded once and shared by every connection that uses it
// (parsing the default roots costs milliseconds).
#pragma once

#include <memory>

#include "common.h"
#include "tls/ticket_keys.h"
#include "tls/tls_context.h"

namespace quicket {

class SslConfig : public Napi::ObjectWrap<SslConfig> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit SslConfig(const Napi::CallbackInfo& info);

  const std::shared_ptr<TlsContext>& context() const { return context_; }
  const std::shared_ptr<const TicketKeyRing>& ticket_keys() const { return ticket_keys_; }
  static SslConfig* FromValue(const Napi::Value& value);

  // The 48-byte keys of a JS Buffer or Buffer[] (checked by lib/), newest first.
  static std::vector<std::string> KeysOf(const Napi::Value& value);
  // `antiReplayStore` (an SslConfig's or an Engine's): the shared store in that file, or a thrown
  // ERR_QUIC_ANTI_REPLAY_STORE carrying `path` (and `syscall`, `errno` for a system failure).
  static std::shared_ptr<ReplayStore> OpenReplayStore(Napi::Env env, const std::string& path);

 private:
  Napi::Value GetTicketKeys(const Napi::CallbackInfo& info);

  std::shared_ptr<TlsContext> context_;
  std::shared_ptr<const TicketKeyRing> ticket_keys_;
};

}  // namespace quicket
