#include "ssl_config.h"

#include "tls/shared_replay_store.h"

namespace quicket {

namespace {
std::vector<std::string> StringsOf(const Napi::Value& value) {
  std::vector<std::string> out;
  if (!value.IsArray()) return out;
  Napi::Array list = value.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) out.push_back(BytesOf(list.Get(i)));
  return out;
}
}  // namespace

Napi::Function SslConfig::Init(Napi::Env env) {
  return DefineClass(env, "SslConfig", {InstanceMethod<&SslConfig::GetTicketKeys>("getTicketKeys")});
}

std::vector<std::string> SslConfig::KeysOf(const Napi::Value& value) {
  if (value.IsArray()) return StringsOf(value);
  if (value.IsTypedArray()) return {BytesOf(value)};
  return {};
}

// Options arrive validated by lib/ssl-config.ts (with node:tls's roots as `ca` by default); here
// only what OpenSSL itself can refuse is checked.
SslConfig::SslConfig(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SslConfig>(info) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();
  TlsContextOptions tls;
  Napi::Array alpn = options.Get("alpn").As<Napi::Array>();
  for (uint32_t i = 0; i < alpn.Length(); i++) tls.alpn.push_back(alpn.Get(i).As<Napi::String>());
  if (options.Get("cert").IsTypedArray()) {
    tls.cert_pem = BytesOf(options.Get("cert"));
    tls.key_pem = BytesOf(options.Get("key"));
  }
  tls.ca_pems = StringsOf(options.Get("ca"));
  tls.default_roots = StringsOf(options.Get("defaultRoots"));
  if (options.Get("ecdhCurve").IsString()) tls.groups = options.Get("ecdhCurve").As<Napi::String>();
  tls.reject_unauthorized = options.Get("rejectUnauthorized").ToBoolean();
  tls.early_data = options.Get("earlyData").ToBoolean();
  tls.ticket_lifetime = options.Get("ticketLifetime").As<Napi::Number>().Uint32Value();
  tls.anti_replay_window_ms = options.Get("antiReplayWindow").As<Napi::Number>().Int64Value();
  if (options.Get("antiReplayStore").IsString()) {
    tls.replay_store = OpenReplayStore(env, options.Get("antiReplayStore").As<Napi::String>());
  }

  TlsContextError error;
  context_ = TlsContext::Make(tls, &error);
  switch (error.kind) {
    case TlsContextError::Kind::kNone:
      break;
    case TlsContextError::Kind::kGroups:
      ThrowCoded(env, ErrorKind::kRangeError, "ERR_INVALID_ARG_VALUE", "options.ecdhCurve: " + error.message);
    case TlsContextError::Kind::kKeyMaterial:
      ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_INVALID_CERTIFICATE", error.message);
    case TlsContextError::Kind::kLibrary:
      ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_TLS", error.message);
  }
  ticket_keys_ = TicketKeyRing::Make(KeysOf(options.Get("ticketKeys")));
  if (!ticket_keys_) ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_TLS", "cannot generate a ticket key");
}

std::shared_ptr<ReplayStore> SslConfig::OpenReplayStore(Napi::Env env, const std::string& path) {
  SharedReplayStoreError failure;
  std::shared_ptr<SharedReplayStore> store = SharedReplayStore::Open(path, &failure);
  if (store) return store;
  Napi::Error error = MakeCodedError(env, "ERR_QUIC_ANTI_REPLAY_STORE", "antiReplayStore: " + failure.message);
  error.Set("path", path);
  if (failure.system_errno != 0) {
    // Like node:fs's errors: libuv's negative number (on Unix, -errno) and the call that failed.
    error.Set("errno", Napi::Number::New(env, -failure.system_errno));
    error.Set("syscall", failure.syscall);
  }
  throw error;
}

SslConfig* SslConfig::FromValue(const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  return SslConfig::Unwrap(value.As<Napi::Object>());
}

Napi::Value SslConfig::GetTicketKeys(const Napi::CallbackInfo& info) {
  std::string key = ticket_keys_->NewestBytes();
  return Napi::Buffer<char>::Copy(info.Env(), key.data(), key.size());
}

}  // namespace quicket
