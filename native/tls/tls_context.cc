#include "tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <mutex>

#include "crypto.h"
#include "tls_session.h"

namespace quicket {

namespace {
// QUIC is TLS 1.3 only. AES-128-GCM first: its SHA-256 key schedule runs on SHA-NI and packet
// protection is cheapest with it.
constexpr const char* kCipherSuites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";
// The client sends one key share (the first group, X25519): OpenSSL 3.5's default adds an
// X25519MLKEM768 share, which makes the ClientHello span two Initial datagrams and costs a
// post-quantum key generation per handshake. Post-quantum is opt-in (ecdhCurve).
constexpr const char* kClientGroups = "X25519:secp256r1:secp384r1:secp521r1";
// The server takes whichever of these the client sent a share for (one preference tuple, so no
// HelloRetryRequest when the client's share is on the list), the hybrid first.
constexpr const char* kServerGroups = "X25519MLKEM768:X25519:secp256r1:secp384r1:secp521r1";

std::string OpenSslError(const char* what) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return what;
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return std::string(what) + ": " + text;
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemoryBio(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// Server preference order (like node:tls's ALPNProtocols on a server); no overlap is fatal,
// with TLS's no_application_protocol alert, which the client reports as ERR_QUIC_ALPN_MISMATCH.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
               void* arg) {
  const auto* ours = static_cast<const std::vector<std::string>*>(arg);
  for (const auto& name : *ours) {
    for (unsigned i = 0; i < inlen;) {
      unsigned length = in[i];
      if (i + 1 + length > inlen) break;
      if (length == name.size() && name.compare(0, length, reinterpret_cast<const char*>(in + i + 1), length) == 0) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(length);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + length;
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Adds every certificate of each PEM to `store`; an error names the first that fails.
std::string AddPems(X509_STORE* store, const std::vector<std::string>& pems) {
  for (const auto& pem : pems) {
    BioPtr bio = MemoryBio(pem);
    int found = 0;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      int ok = X509_STORE_add_cert(store, cert);
      X509_free(cert);
      if (ok != 1) return OpenSslError("X509_STORE_add_cert");
      found++;
    }
    ERR_clear_error();  // the end of the PEM reads as an error
    if (found == 0) return "no certificate found in ca";
  }
  return "";
}

// node:tls's default roots parsed once per process (about 10 ms) into one store that every
// client context without `ca` shares; Workers build it at most once between them.
X509_STORE* SharedDefaultStore(const std::vector<std::string>& pems) {
  static std::mutex mutex;
  static X509_STORE* store = nullptr;  // never freed: it lives as long as the process
  std::lock_guard<std::mutex> lock(mutex);
  if (!store) {
    store = X509_STORE_new();
    if (store) AddPems(store, pems);  // Node's own roots: whatever OpenSSL parses of them
  }
  return store;
}
}  // namespace

TlsContext::TlsContext(const TlsContextOptions& options)
    : alpn_(options.alpn),
      anti_replay_window_ms_(AntiReplay::EffectiveWindow(options.anti_replay_window_ms)),
      // The process's store lives as long as the process: not owned here.
      replay_store_(options.replay_store ? options.replay_store
                                         : std::shared_ptr<ReplayStore>(&AntiReplay::ForProcess(), [](ReplayStore*) {})) {}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::string TlsContext::AlpnWire(const std::vector<std::string>& alpn) {
  std::string wire;
  for (const auto& name : alpn) {
    wire.push_back(static_cast<char>(name.size()));
    wire += name;
  }
  return wire;
}

std::shared_ptr<TlsContext> TlsContext::Make(const TlsContextOptions& options, TlsContextError* error) {
  std::shared_ptr<TlsContext> context(new TlsContext(options));
  *error = InitCrypto() ? context->Configure(options)
                        : TlsContextError{TlsContextError::Kind::kLibrary, "cannot initialise OpenSSL"};
  return error->kind == TlsContextError::Kind::kNone ? context : nullptr;
}

TlsContextError TlsContext::Configure(const TlsContextOptions& options) {
  using Kind = TlsContextError::Kind;
  // One context serves both roles: an SslConfig is a server's and the default for its connects.
  ctx_ = SSL_CTX_new(TLS_method());
  if (!ctx_) return {Kind::kLibrary, OpenSslError("SSL_CTX_new")};
  reject_unauthorized_ = options.reject_unauthorized;
  early_data_ = options.early_data;
  client_groups_ = options.groups.empty() ? kClientGroups : options.groups;

  // Stateless tickets: OpenSSL's own anti-replay would make them single-use per SSL_CTX (breaking
  // clusters and restarts); quicket's ReplayStore takes its place.
  SSL_CTX_set_options(ctx_, SSL_OP_NO_ANTI_REPLAY | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_ciphersuites(ctx_, kCipherSuites) != 1) return {Kind::kLibrary, OpenSslError("cipher suites")};
  if (SSL_CTX_set1_groups_list(ctx_, options.groups.empty() ? kServerGroups : options.groups.c_str()) != 1) {
    return {Kind::kGroups, OpenSslError("unsupported ecdhCurve")};
  }
  // Clients hear of every ticket (the new-session callback); nothing is cached inside OpenSSL.
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_set_num_tickets(ctx_, 1);
  SSL_CTX_set_timeout(ctx_, options.ticket_lifetime);
  // RFC 9001 §4.6.1: a QUIC ticket that allows 0-RTT carries max_early_data_size 0xffffffff; one
  // that does not carries 0, so clients do not even try.
  SSL_CTX_set_max_early_data(ctx_, options.early_data ? UINT32_MAX : 0);
  SSL_CTX_set_alpn_select_cb(ctx_, SelectAlpn, &alpn_);
  TlsSession::InstallCallbacks(ctx_);

  if (!options.cert_pem.empty()) {
    std::string error = LoadKeyPair(options.cert_pem, options.key_pem);
    if (!error.empty()) return {Kind::kKeyMaterial, "cannot load cert/key: " + error};
    has_certificate_ = true;
  }
  default_roots_ = options.default_roots;
  std::string error = AddPems(SSL_CTX_get_cert_store(ctx_), options.ca_pems);
  if (!error.empty()) return {Kind::kKeyMaterial, "cannot load ca: " + error};
  return {};
}

void TlsContext::PrepareForClients() {
  if (default_roots_.empty()) return;
  if (X509_STORE* store = SharedDefaultStore(default_roots_)) SSL_CTX_set1_cert_store(ctx_, store);
  default_roots_.clear();
  default_roots_.shrink_to_fit();
}

std::string TlsContext::LoadKeyPair(const std::string& cert_pem, const std::string& key_pem) {
  BioPtr certs = MemoryBio(cert_pem);
  X509* leaf = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr);
  if (!leaf) return OpenSslError("no certificate");
  int ok = SSL_CTX_use_certificate(ctx_, leaf);
  X509_free(leaf);
  if (ok != 1) return OpenSslError("certificate");
  // The rest of the PEM is the chain, sent after the leaf.
  while (X509* intermediate = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx_, intermediate) != 1) {
      X509_free(intermediate);
      return OpenSslError("chain certificate");
    }
  }
  ERR_clear_error();  // the end of the PEM reads as an error
  BioPtr key_bio = MemoryBio(key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (!key) return OpenSslError("no private key");
  ok = SSL_CTX_use_PrivateKey(ctx_, key);
  EVP_PKEY_free(key);
  if (ok != 1) return OpenSslError("private key");
  if (SSL_CTX_check_private_key(ctx_) != 1) return OpenSslError("key does not match the certificate");
  return "";
}

void TlsContext::EnableKeylog() {
  if (keylog_enabled_) return;
  keylog_enabled_ = true;
  TlsSession::InstallKeylog(ctx_);
}

}  // namespace quicket
