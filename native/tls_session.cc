#include "tls_session.h"

#include <arpa/inet.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include <cstring>
#include <vector>

namespace quicket {

namespace {

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string Hex(const unsigned char* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; i++) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
  return out;
}

int SetAlpn(gnutls_session_t session, const std::vector<std::string>& alpn, unsigned flags) {
  std::vector<gnutls_datum_t> protocols;
  for (const auto& name : alpn) {
    protocols.push_back({reinterpret_cast<unsigned char*>(const_cast<char*>(name.data())),
                         static_cast<unsigned>(name.size())});
  }
  return gnutls_alpn_set_protocols(session, protocols.data(), protocols.size(), flags);
}
}  // namespace

TlsSession::TlsSession(std::shared_ptr<SslContext> context, ngtcp2_crypto_conn_ref* conn_ref)
    : context_(std::move(context)), conn_ref_(conn_ref) {}

TlsSession::~TlsSession() {
  if (session_) {
    gnutls_session_set_ptr(session_, nullptr);
    gnutls_deinit(session_);
  }
  gnutls_free(ticket_key_.data);
}

TlsSession* TlsSession::From(gnutls_session_t session) {
  return static_cast<TlsSession*>(gnutls_db_get_ptr(session));
}

std::string TlsSession::InitClient(const std::string& servername,
                                   const std::vector<std::string>& alpn,
                                   const std::string& session_data, bool early_data) {
  // Without GNUTLS_ENABLE_EARLY_DATA the ClientHello does not announce 0-RTT at all.
  // One key share (X25519): a server without it asks again (HelloRetryRequest), which is rare;
  // a second share costs every handshake a P-256 key generation.
  unsigned flags = GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA | GNUTLS_KEY_SHARE_TOP |
                   (early_data ? GNUTLS_ENABLE_EARLY_DATA : 0);
  int rv = gnutls_init(&session_, flags);
  if (rv != 0) return gnutls_strerror(rv);
  servername_ = servername;
  if ((rv = gnutls_priority_set(session_, context_->priority())) != 0) return gnutls_strerror(rv);
  if (ngtcp2_crypto_gnutls_configure_client_session(session_) != 0) return "cannot configure QUIC TLS";
  gnutls_session_set_ptr(session_, conn_ref_);
  // The db pointer is otherwise unused on a QUIC session; it leads hooks back to this object.
  gnutls_db_set_ptr(session_, this);
  gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, context_->credentials());
  if ((rv = SetAlpn(session_, alpn, 0)) != 0) return gnutls_strerror(rv);
  if (!IsIpAddress(servername)) {
    gnutls_server_name_set(session_, GNUTLS_NAME_DNS, servername.data(), servername.size());
  }
  if (context_->reject_unauthorized()) {
    // Verifies the chain and the name; GnuTLS matches IP literals against IP SANs. It keeps the
    // pointer, not a copy: pass the member that lives as long as the session.
    gnutls_session_set_verify_cert(session_, servername_.c_str(), 0);
  }
  gnutls_handshake_set_hook_function(session_, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_BOTH,
                                     OnNewSessionTicket);
  if (!session_data.empty() && gnutls_session_set_data(session_, session_data.data(), session_data.size()) != 0) {
    // GnuTLS 3.7.9 crashes in gnutls_deinit() after gnutls_session_set_data() refused the data:
    // abandon this session on purpose (a small leak per damaged ticket instead of a crash) and
    // start afresh for a full handshake.
    gnutls_session_set_ptr(session_, nullptr);
    session_ = nullptr;
    std::string error = InitClient(servername, alpn, "", early_data);
    session_refused_ = true;
    return error;
  }
  return "";
}

std::string TlsSession::InitServer(const std::string& ticket_key) {
  // Without GNUTLS_ENABLE_EARLY_DATA the tickets say "no 0-RTT", so clients do not even try.
  unsigned flags = GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA;
  if (context_->early_data()) flags |= GNUTLS_ENABLE_EARLY_DATA;
  int rv = gnutls_init(&session_, flags);
  if (rv != 0) return gnutls_strerror(rv);
  if ((rv = gnutls_priority_set(session_, context_->priority())) != 0) return gnutls_strerror(rv);
  if (ngtcp2_crypto_gnutls_configure_server_session(session_) != 0) return "cannot configure QUIC TLS";
  gnutls_session_set_ptr(session_, conn_ref_);
  gnutls_db_set_ptr(session_, this);
  gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, context_->credentials());
  if ((rv = SetAlpn(session_, context_->alpn(), GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE)) != 0) {
    return gnutls_strerror(rv);
  }
  // GnuTLS keeps a pointer to the key datum: it must live as long as the session.
  ticket_key_.data = reinterpret_cast<unsigned char*>(gnutls_malloc(ticket_key.size()));
  memcpy(ticket_key_.data, ticket_key.data(), ticket_key.size());
  ticket_key_.size = ticket_key.size();
  if ((rv = gnutls_session_ticket_enable_server(session_, &ticket_key_)) != 0) return gnutls_strerror(rv);
  gnutls_handshake_set_hook_function(session_, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_POST, OnClientHello);
  gnutls_db_set_cache_expiration(session_, context_->ticket_lifetime());
  if (context_->early_data()) {
    // RFC 9001 §4.6.1: a QUIC ticket that allows 0-RTT carries max_early_data_size 0xffffffff.
    gnutls_record_set_max_early_data_size(session_, 0xffffffff);
    gnutls_anti_replay_enable(session_, context_->anti_replay());
  }
  return "";
}

int TlsSession::SendTickets() { return gnutls_session_ticket_send(session_, 1, 0); }

std::string TlsSession::alpn() const {
  gnutls_datum_t selected{};
  if (gnutls_alpn_get_selected_protocol(session_, &selected) != 0) return "";
  return std::string(reinterpret_cast<char*>(selected.data), selected.size);
}

std::string TlsSession::servername() const {
  if (!servername_.empty()) return servername_;
  char name[256];
  size_t size = sizeof(name);
  unsigned type = 0;
  if (gnutls_server_name_get(session_, name, &size, &type, 0) != 0 || type != GNUTLS_NAME_DNS) return "";
  return std::string(name, size);
}

bool TlsSession::resumed() const { return gnutls_session_is_resumed(session_) != 0; }

bool TlsSession::early_data_accepted() const {
  return (gnutls_session_get_flags(session_) & GNUTLS_SFLAGS_EARLY_DATA) != 0;
}

bool TlsSession::VerificationFailure(std::string* code, std::string* message) const {
  unsigned status = gnutls_session_get_verify_cert_status(session_);
  // (unsigned)-1: no certificate was verified (not requested, or the handshake failed first).
  if (status == 0 || status == static_cast<unsigned>(-1)) return false;
  if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
    *code = "ERR_TLS_CERT_ALTNAME_INVALID";
  } else if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA)) {
    *code = "ERR_QUIC_CERT_UNTRUSTED";
  } else if (status & GNUTLS_CERT_EXPIRED) {
    *code = "ERR_QUIC_CERT_EXPIRED";
  } else {
    *code = "ERR_QUIC_CERT_INVALID";
  }
  gnutls_datum_t text{};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
    message->assign(reinterpret_cast<char*>(text.data), text.size);
    gnutls_free(text.data);
  } else {
    *message = "certificate verification failed";
  }
  return true;
}

void TlsSession::set_keylog_handler(KeylogHandler handler) {
  keylog_handler_ = std::move(handler);
  gnutls_session_set_keylog_function(session_, keylog_handler_ ? OnKeylog : nullptr);
}

namespace {
// What the client needs from a NewSessionTicket body (RFC 8446 §4.6.1): its lifetime and whether
// it allows early data. GnuTLS keeps neither where a client can ask for it.
struct TicketTerms {
  uint32_t lifetime = 0;
  bool early_data = false;
};

bool ParseNewSessionTicket(const gnutls_datum_t* message, TicketTerms* terms) {
  const unsigned char* p = message->data;
  size_t left = message->size;
  auto read = [&](size_t n, uint32_t* value) {
    if (left < n) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    p += n;
    left -= n;
    if (value) *value = v;
    return true;
  };
  auto skip = [&](size_t n) {
    if (left < n) return false;
    p += n;
    left -= n;
    return true;
  };
  uint32_t nonce_length, ticket_length, extensions_length;
  if (!read(4, &terms->lifetime) || !skip(4) || !read(1, &nonce_length) || !skip(nonce_length) ||
      !read(2, &ticket_length) || !skip(ticket_length) || !read(2, &extensions_length) || left < extensions_length) {
    return false;
  }
  while (left >= 4) {
    uint32_t type, length;
    read(2, &type);
    read(2, &length);
    if (left < length) return false;
    if (type == 42 /* early_data */ && length == 4) {
      uint32_t max_early_data;
      read(4, &max_early_data);
      terms->early_data = max_early_data > 0;
    } else {
      skip(length);
    }
  }
  return true;
}
}  // namespace

// A ClientHello without QUIC transport parameters is not QUIC (RFC 9001 §8.2): refuse it here,
// or ngtcp2 (1.11) would assert when writing the first server packet without them.
int TlsSession::OnClientHello(gnutls_session_t session, unsigned, unsigned, unsigned, const gnutls_datum_t*) {
  auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(session));
  ngtcp2_conn* conn = ref ? ref->get_conn(ref) : nullptr;
  if (conn && ngtcp2_conn_get_remote_transport_params(conn) == nullptr) {
    ngtcp2_conn_set_tls_alert(conn, 109 /* missing_extension */);
    return GNUTLS_E_MISSING_EXTENSION;
  }
  return 0;
}

// Called before GnuTLS parses a NewSessionTicket (the whole body is visible, so its terms are
// read here) and after (the session data that resumes it exists only then).
int TlsSession::OnNewSessionTicket(gnutls_session_t session, unsigned, unsigned when, unsigned incoming,
                                   const gnutls_datum_t* message) {
  TlsSession* self = From(session);
  // Nobody listens for tickets: do no ticket work at all.
  if (!self || !incoming || !self->ticket_handler_ || !self->want_tickets_) return 0;
  if (when == GNUTLS_HOOK_PRE) {
    TicketTerms terms;
    self->pending_ticket_valid_ = ParseNewSessionTicket(message, &terms);
    self->pending_ticket_lifetime_ = terms.lifetime;
    self->pending_ticket_early_data_ = terms.early_data;
    return 0;
  }
  if (!self->pending_ticket_valid_) return 0;
  self->pending_ticket_valid_ = false;
  gnutls_datum_t data{};
  if (gnutls_session_get_data2(session, &data) != 0) return 0;
  std::string session_data(reinterpret_cast<char*>(data.data), data.size);
  gnutls_free(data.data);
  self->ticket_handler_(std::move(session_data), self->pending_ticket_lifetime_, self->pending_ticket_early_data_);
  return 0;
}

int TlsSession::OnKeylog(gnutls_session_t session, const char* label, const gnutls_datum_t* secret) {
  TlsSession* self = From(session);
  if (!self || !self->keylog_handler_) return 0;
  gnutls_datum_t client_random{}, server_random{};
  gnutls_session_get_random(session, &client_random, &server_random);
  self->keylog_handler_(std::string(label) + " " + Hex(client_random.data, client_random.size) + " " +
                        Hex(secret->data, secret->size) + "\n");
  return 0;
}

}  // namespace quicket
