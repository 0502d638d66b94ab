#include "ssl_config.h"

namespace quicket {

namespace {
constexpr unsigned kDefaultAntiReplayWindowMs = 60000;
// QUIC requires TLS 1.3; middlebox compatibility mode must be off (RFC 9001 §8.4).
// X25519 first: the cheapest key exchange, and what most QUIC stacks offer first. AES-128-GCM
// first: its suite's SHA-256 key schedule runs on SHA-NI, AES-256-GCM's SHA-384 does not (it was
// a tenth of a 0-RTT handshake's CPU time), and packet protection is cheaper too.
constexpr const char* kPriority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:"
    "-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:+AES-256-GCM:+AES-128-CCM:%DISABLE_TLS13_COMPAT_MODE";

gnutls_datum_t Datum(const std::string& bytes) {
  return gnutls_datum_t{reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data())),
                        static_cast<unsigned>(bytes.size())};
}
}  // namespace

SslContext::SslContext() {
  gnutls_certificate_allocate_credentials(&credentials_);
  gnutls_priority_init(&priority_, kPriority, nullptr);
  gnutls_anti_replay_init(&anti_replay_);
  gnutls_anti_replay_set_ptr(anti_replay_, this);
  gnutls_anti_replay_set_add_function(anti_replay_, AddReplayEntry);
  // GnuTLS's 10 s default refuses 0-RTT on tickets issued before the window last rolled.
  gnutls_anti_replay_set_window(anti_replay_, kDefaultAntiReplayWindowMs);
}

SslContext::~SslContext() {
  gnutls_anti_replay_deinit(anti_replay_);
  gnutls_priority_deinit(priority_);
  gnutls_certificate_free_credentials(credentials_);
}

void SslContext::set_anti_replay_window(unsigned milliseconds) {
  gnutls_anti_replay_set_window(anti_replay_, milliseconds);
}

std::string SslContext::LoadKeyPair(const std::string& cert_pem, const std::string& key_pem) {
  gnutls_datum_t cert = Datum(cert_pem);
  gnutls_datum_t key = Datum(key_pem);
  int rv = gnutls_certificate_set_x509_key_mem(credentials_, &cert, &key, GNUTLS_X509_FMT_PEM);
  if (rv < 0) return gnutls_strerror(rv);
  has_certificate_ = true;
  return "";
}

std::string SslContext::AddTrustedPem(const std::string& ca_pem) {
  gnutls_datum_t ca = Datum(ca_pem);
  int rv = gnutls_certificate_set_x509_trust_mem(credentials_, &ca, GNUTLS_X509_FMT_PEM);
  if (rv < 0) return gnutls_strerror(rv);
  if (rv == 0) return "no certificate found in ca";
  return "";
}

std::string SslContext::UseSystemTrust() {
  int rv = gnutls_certificate_set_x509_system_trust(credentials_);
  if (rv < 0) return gnutls_strerror(rv);
  return "";
}

int SslContext::AddReplayEntry(void* ptr, time_t expires, const gnutls_datum_t* key,
                               const gnutls_datum_t* data) {
  auto* self = static_cast<SslContext*>(ptr);
  time_t now = time(nullptr);
  // Entries only matter until their ticket-age window has passed; purge them in bulk.
  if (now >= self->replay_next_purge_) {
    for (auto it = self->replay_seen_.begin(); it != self->replay_seen_.end();) {
      it = it->second < now ? self->replay_seen_.erase(it) : std::next(it);
    }
    self->replay_next_purge_ = now + 10;
  }
  std::string id(reinterpret_cast<const char*>(key->data), key->size);
  auto [it, inserted] = self->replay_seen_.emplace(std::move(id), expires);
  if (!inserted) {
    if (it->second >= now) return GNUTLS_E_DB_ENTRY_EXISTS;
    it->second = expires;
  }
  return 0;
}

Napi::Function SslConfig::Init(Napi::Env env) {
  return DefineClass(env, "SslConfig", {InstanceMethod<&SslConfig::GetTicketKeys>("getTicketKeys")});
}

// Options arrive validated by lib/ssl-config.ts; here only what GnuTLS itself can refuse is checked.
SslConfig::SslConfig(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<SslConfig>(info), context_(std::make_shared<SslContext>()) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();

  std::vector<std::string> alpn;
  Napi::Array list = options.Get("alpn").As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) alpn.push_back(list.Get(i).As<Napi::String>());
  context_->set_alpn(std::move(alpn));

  if (options.Has("cert") && !options.Get("cert").IsUndefined()) {
    std::string error = context_->LoadKeyPair(BytesOf(options.Get("cert")), BytesOf(options.Get("key")));
    if (!error.empty()) {
      ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_INVALID_CERTIFICATE", "cannot load cert/key: " + error);
    }
  }
  Napi::Value ca = options.Get("ca");
  if (ca.IsArray()) {
    Napi::Array cas = ca.As<Napi::Array>();
    for (uint32_t i = 0; i < cas.Length(); i++) {
      std::string error = context_->AddTrustedPem(BytesOf(cas.Get(i)));
      if (!error.empty()) {
        ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_INVALID_CERTIFICATE", "cannot load ca: " + error);
      }
    }
  } else {
    // Like node:tls, an absent `ca` means the system's trust store.
    std::string error = context_->UseSystemTrust();
    if (!error.empty()) {
      ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_INVALID_CERTIFICATE", "cannot load system CA store: " + error);
    }
  }
  context_->set_reject_unauthorized(options.Get("rejectUnauthorized").ToBoolean());
  context_->set_early_data(options.Get("earlyData").ToBoolean());
  context_->set_ticket_lifetime(options.Get("ticketLifetime").As<Napi::Number>().Uint32Value());
  context_->set_anti_replay_window(options.Get("antiReplayWindow").As<Napi::Number>().Uint32Value());
  Napi::Value keys = options.Get("ticketKeys");
  if (keys.IsTypedArray()) {
    context_->set_ticket_keys(BytesOf(keys));
  } else {
    gnutls_datum_t generated{};
    gnutls_session_ticket_key_generate(&generated);
    context_->set_ticket_keys(std::string(reinterpret_cast<char*>(generated.data), generated.size));
    gnutls_free(generated.data);
  }
}

SslConfig* SslConfig::FromValue(const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  return SslConfig::Unwrap(value.As<Napi::Object>());
}

Napi::Value SslConfig::GetTicketKeys(const Napi::CallbackInfo& info) {
  const std::string& keys = context_->ticket_keys();
  return Napi::Buffer<char>::Copy(info.Env(), keys.data(), keys.size());
}

}  // namespace quicket
