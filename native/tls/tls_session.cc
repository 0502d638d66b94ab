#include "tls_session.h"

#include <arpa/inet.h>
#include <ngtcp2/ngtcp2_crypto_ossl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "crypto.h"

namespace quicket {

namespace {
bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

int SessionIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Server-side data sealed into each ticket (never seen by the client): the format, the QUIC
// version, the transport-settings digest and the issue time in wall-clock milliseconds.
constexpr uint8_t kAppDataFormat = 1;
constexpr size_t kSettingsDigestLength = 8;
constexpr size_t kAppDataLength = 1 + 4 + kSettingsDigestLength + 8;

void PutBigEndian(std::string* out, uint64_t value, size_t bytes) {
  for (size_t i = bytes; i-- > 0;) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(const uint8_t* in, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; i++) value = (value << 8) | in[i];
  return value;
}
}  // namespace

TlsSession::TlsSession(std::shared_ptr<TlsContext> context, ngtcp2_crypto_conn_ref* conn_ref)
    : context_(std::move(context)), conn_ref_(conn_ref) {}

TlsSession::~TlsSession() { FreeHandshakeState(); }

void TlsSession::FreeHandshakeState() {
  if (ssl_) {
    SSL_set_ex_data(ssl_, SessionIndex(), nullptr);
    // ngtcp2_crypto_ossl's callbacks must not reach the connection from SSL_free.
    SSL_set_app_data(ssl_, nullptr);
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ossl_) {
    ngtcp2_crypto_ossl_ctx_del(ossl_);
    ossl_ = nullptr;
  }
}

void TlsSession::ReleaseHandshakeState() {
  if (!ssl_ || released_) return;
  alpn_ = alpn();
  servername_ = servername();
  peer_certificate_ = PeerCertificateDer();
  resumed_ = resumed();
  early_data_accepted_ = early_data_accepted();
  released_ = true;
  FreeHandshakeState();
  policy_ = {};  // the ticket keys and replay store decide nothing more
}

TlsSession* TlsSession::From(const ssl_st* ssl) {
  return static_cast<TlsSession*>(SSL_get_ex_data(ssl, SessionIndex()));
}

void* TlsSession::native_handle() const { return ossl_; }

std::string TlsSession::Create() {
  if (ngtcp2_crypto_ossl_ctx_new(&ossl_, nullptr) != 0) return "cannot allocate QUIC TLS state";
  ssl_ = SSL_new(context_->native());
  if (!ssl_) return "SSL_new failed";
  ngtcp2_crypto_ossl_ctx_set_ssl(ossl_, ssl_);
  // ngtcp2's backend finds the connection through the app data; quicket's callbacks find this.
  SSL_set_app_data(ssl_, conn_ref_);
  SSL_set_ex_data(ssl_, SessionIndex(), this);
  return "";
}

std::string TlsSession::InitClient(const std::string& servername, const std::vector<std::string>& alpn,
                                   const std::string& session_data, bool early_data) {
  context_->PrepareForClients();
  std::string error = Create();
  if (!error.empty()) return error;
  if (ngtcp2_crypto_ossl_configure_client_session(ssl_) != 0) return "cannot configure QUIC TLS";
  SSL_set_connect_state(ssl_);
  servername_ = servername;
  if (SSL_set1_groups_list(ssl_, context_->client_groups().c_str()) != 1) return "cannot set key exchange groups";
  std::string wire = TlsContext::AlpnWire(alpn);
  // SSL_set_alpn_protos returns 0 on success.
  if (SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()), wire.size()) != 0) {
    return "cannot set ALPN";
  }
  bool ip = IsIpAddress(servername);
  if (!ip && SSL_set_tlsext_host_name(ssl_, servername.c_str()) != 1) return "cannot set the server name";
  if (context_->reject_unauthorized()) {
    // The chain against the context's roots, and the name: IP literals against IP SANs.
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), servername.c_str())
                : SSL_set1_host(ssl_, servername.c_str());
    if (ok != 1) return "cannot set the name to verify";
  } else {
    SSL_set_verify(ssl_, SSL_VERIFY_NONE, nullptr);
  }
  if (!session_data.empty()) {
    const auto* p = reinterpret_cast<const unsigned char*>(session_data.data());
    const auto* end = p + session_data.size();
    SSL_SESSION* session = context_->session_cache().Take(session_data);
    if (session) {
      p = end;
    } else {
      session = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(session_data.size()));
    }
    bool usable = session && p == end && SSL_SESSION_get_protocol_version(session) == TLS1_3_VERSION &&
                  SSL_SESSION_is_resumable(session) &&
                  SSL_set_session(ssl_, session) == 1;
    // RFC 9001 §4.6.1: only a ticket with max_early_data_size 0xffffffff allows QUIC 0-RTT.
    if (usable && early_data && SSL_SESSION_get_max_early_data(session) == UINT32_MAX) {
      SSL_set_quic_tls_early_data_enabled(ssl_, 1);
      early_data_offered_ = true;
    }
    SSL_SESSION_free(session);
    session_refused_ = !usable;
  }
  return "";
}

void TlsSession::CancelEarlyData() {
  SSL_set_quic_tls_early_data_enabled(ssl_, 0);
  early_data_offered_ = false;
}

std::string TlsSession::InitServer(ServerTicketPolicy policy) {
  policy_ = std::move(policy);
  std::string error = Create();
  if (!error.empty()) return error;
  if (ngtcp2_crypto_ossl_configure_server_session(ssl_) != 0) return "cannot configure QUIC TLS";
  SSL_set_accept_state(ssl_);
  if (context_->early_data()) SSL_set_quic_tls_early_data_enabled(ssl_, 1);
  return "";
}

std::string TlsSession::alpn() const {
  if (released_) return alpn_;
  const unsigned char* selected = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(ssl_, &selected, &length);
  return selected ? std::string(reinterpret_cast<const char*>(selected), length) : "";
}

std::string TlsSession::servername() const {
  if (!servername_.empty() || released_) return servername_;
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name ? name : "";
}

bool TlsSession::resumed() const { return released_ ? resumed_ : SSL_session_reused(ssl_) == 1; }

std::string TlsSession::PeerCertificateDer() const {
  if (released_) return peer_certificate_;
  X509* certificate = SSL_get0_peer_certificate(ssl_);
  if (!certificate) return {};
  int length = i2d_X509(certificate, nullptr);
  if (length <= 0) return {};
  std::string der(static_cast<size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(certificate, &out);
  return der;
}

bool TlsSession::early_data_accepted() const {
  return released_ ? early_data_accepted_ : SSL_get_early_data_status(ssl_) == SSL_EARLY_DATA_ACCEPTED;
}

// The handshake completed before a release, so verification had passed.
bool TlsSession::VerificationFailure(std::string* code, std::string* message) const {
  if (!context_->reject_unauthorized() || released_) return false;
  long result = SSL_get_verify_result(ssl_);
  if (result == X509_V_OK) return false;
  switch (result) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      *code = "ERR_TLS_CERT_ALTNAME_INVALID";
      break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_INVALID_CA:
      *code = "ERR_QUIC_CERT_UNTRUSTED";
      break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      *code = "ERR_QUIC_CERT_EXPIRED";
      break;
    default:
      *code = "ERR_QUIC_CERT_INVALID";
  }
  *message = X509_verify_cert_error_string(result);
  return true;
}

void TlsSession::set_keylog_handler(KeylogHandler handler) {
  keylog_handler_ = std::move(handler);
  if (keylog_handler_) context_->EnableKeylog();
}

// ---- tickets, client side ------------------------------------------------------------------

void TlsSession::OnNewSession(SSL_SESSION* session) {
  tickets_received_++;
  // Nobody listens for tickets: do no ticket work at all.
  if (!ticket_handler_) return;  // set only while JS listens for tickets
  int length = i2d_SSL_SESSION(session, nullptr);
  if (length <= 0) return;
  std::string data(static_cast<size_t>(length), '\0');
  auto* p = reinterpret_cast<unsigned char*>(data.data());
  if (i2d_SSL_SESSION(session, &p) != length) return;
  context_->session_cache().Put(data, session);
  ticket_handler_(std::move(data), static_cast<uint32_t>(SSL_SESSION_get_ticket_lifetime_hint(session)),
                  SSL_SESSION_get_max_early_data(session) == UINT32_MAX);
}

// Serialising here is also what keeps the session resumable: a QUIC connection ends without
// close_notify, and OpenSSL marks an unserialised session not resumable when it is freed.
int TlsSession::OnNewSessionCallback(SSL* ssl, SSL_SESSION* session) {
  if (TlsSession* self = From(ssl)) self->OnNewSession(session);
  return 0;  // the session is not kept: OpenSSL frees it
}

// ---- tickets and 0-RTT, server side --------------------------------------------------------

uint32_t TlsSession::QuicVersion() const {
  ngtcp2_conn* conn = conn_ref_->get_conn(conn_ref_);
  return conn ? ngtcp2_conn_get_client_chosen_version(conn) : 0;
}

std::string TlsSession::TicketAppData() const {
  std::string data;
  data.push_back(static_cast<char>(kAppDataFormat));
  PutBigEndian(&data, QuicVersion(), 4);
  data.append(policy_.settings_digest, 0, kSettingsDigestLength);
  data.resize(1 + 4 + kSettingsDigestLength, '\0');
  PutBigEndian(&data, AntiReplay::NowMs(), 8);
  return data;
}

bool TlsSession::AcceptTicketAppData(const uint8_t* data, size_t length) {
  if (length != kAppDataLength || data[0] != kAppDataFormat) return false;
  // 0-RTT keys and transport parameters are tied to the QUIC version (RFC 9369 §4.3).
  if (GetBigEndian(data + 1, 4) != QuicVersion()) return false;
  bool same_settings = policy_.settings_digest.size() >= kSettingsDigestLength &&
                       memcmp(data + 5, policy_.settings_digest.data(), kSettingsDigestLength) == 0;
  uint64_t issued_ms = GetBigEndian(data + 5 + kSettingsDigestLength, 8);
  early_data_refused_ = !same_settings ||
                        !replay_store().Covers(issued_ms, context_->anti_replay_window_ms(), AntiReplay::NowMs());
  return true;
}

int TlsSession::OnGenerateTicket(SSL* ssl, void*) {
  TlsSession* self = From(ssl);
  if (!self) return 0;
  std::string data = self->TicketAppData();
  return SSL_SESSION_set1_ticket_appdata(SSL_get0_session(ssl), data.data(), data.size());
}

int TlsSession::OnDecryptTicket(SSL* ssl, SSL_SESSION* session, const unsigned char*, size_t, SSL_TICKET_STATUS status,
                                void*) {
  TlsSession* self = From(ssl);
  // Unknown key, garbage or no ticket: a full handshake and a fresh ticket.
  if (!self || (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)) return SSL_TICKET_RETURN_IGNORE_RENEW;
  void* data = nullptr;
  size_t length = 0;
  if (!SSL_SESSION_get0_ticket_appdata(session, &data, &length) ||
      !self->AcceptTicketAppData(static_cast<const uint8_t*>(data), length)) {
    return SSL_TICKET_RETURN_IGNORE_RENEW;
  }
  // Every resumption earns a fresh ticket (under the newest key, current settings), as a full
  // handshake does: clients use each ticket once (RFC 8446 §C.4).
  return SSL_TICKET_RETURN_USE_RENEW;
}

// node:tls's scheme: AES-128-CBC under the key's AES half, HMAC-SHA256 under its secret half.
// Returns 1 (key found, current), 2 (found, older: renew the ticket), 0 (unknown: full handshake).
int TlsSession::OnTicketKey(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                            EVP_MAC_CTX* mac, int encrypt) {
  TlsSession* self = From(ssl);
  if (!self || !self->policy_.keys) return encrypt ? -1 : 0;
  const TicketKeyRing::Key* key;
  bool newest = true;
  if (encrypt) {
    key = &self->policy_.keys->newest();
    memcpy(key_name, key->name, TicketKeyRing::kNameLength);
    if (!RandomBytes(iv, 16) || EVP_EncryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, key->aes_key, iv) != 1) {
      return -1;
    }
  } else {
    key = self->policy_.keys->Find(key_name, &newest);
    if (!key) return 0;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, key->aes_key, iv) != 1) return -1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(key->hmac_secret),
                                        TicketKeyRing::kSecretLength),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  return newest ? 1 : 2;
}

// Consulted once OpenSSL has decided the ticket and its age allow 0-RTT: quicket's policy and
// its replay store have the last word.
int TlsSession::OnAllowEarlyData(SSL* ssl, void*) {
  TlsSession* self = From(ssl);
  if (!self || self->early_data_refused_) return 0;
  ReplayStore::ClientRandom random;
  if (SSL_get_client_random(ssl, random.data(), random.size()) != random.size()) return 0;
  return self->replay_store().Admit(random, self->context_->anti_replay_window_ms(), AntiReplay::NowMs()) ? 1 : 0;
}

// A ClientHello without QUIC transport parameters is not QUIC (RFC 9001 §8.2).
int TlsSession::OnClientHello(SSL* ssl, int* alert, void*) {
  const unsigned char* params = nullptr;
  size_t length = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_quic_transport_parameters, &params, &length) == 1) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  *alert = SSL_AD_MISSING_EXTENSION;
  return SSL_CLIENT_HELLO_ERROR;
}

void TlsSession::OnKeylog(const SSL* ssl, const char* line) {
  TlsSession* self = From(ssl);
  if (self && self->keylog_handler_) self->keylog_handler_(std::string(line) + "\n");
}

void TlsSession::InstallCallbacks(SSL_CTX* ctx) {
  SSL_CTX_sess_set_new_cb(ctx, OnNewSessionCallback);
  SSL_CTX_set_client_hello_cb(ctx, OnClientHello, nullptr);
  SSL_CTX_set_session_ticket_cb(ctx, OnGenerateTicket, OnDecryptTicket, nullptr);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, OnTicketKey);
  SSL_CTX_set_allow_early_data_cb(ctx, OnAllowEarlyData, nullptr);
}

void TlsSession::InstallKeylog(SSL_CTX* ctx) { SSL_CTX_set_keylog_callback(ctx, OnKeylog); }

}  // namespace quicket
