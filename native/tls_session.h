// TlsSession: one GnuTLS session per QUIC connection. It keeps GnuTLS out of Connection: the
// handshake itself is driven by ngtcp2's crypto helper, this class sets the session up and
// answers questions about it (ALPN, resumption, early data, verification, tickets).
#pragma once

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <functional>
#include <memory>
#include <string>

#include "ssl_config.h"

namespace quicket {

class TlsSession {
 public:
  // lifetime: seconds the server grants; early_data: the ticket allows 0-RTT.
  using TicketHandler = std::function<void(std::string session_data, uint32_t lifetime, bool early_data)>;
  using KeylogHandler = std::function<void(std::string line)>;

  TlsSession(std::shared_ptr<SslContext> context, ngtcp2_crypto_conn_ref* conn_ref);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Each Init returns an empty string on success, else the reason.
  std::string InitClient(const std::string& servername, const std::vector<std::string>& alpn,
                         const std::string& session_data, bool early_data);
  std::string InitServer(const std::string& ticket_key);

  // Server: hand out NewSessionTicket messages once the handshake is complete.
  int SendTickets();

  gnutls_session_t session() const { return session_; }
  std::string alpn() const;
  std::string servername() const;
  bool resumed() const;
  bool early_data_accepted() const;
  // Client: a human-readable reason and a code when certificate verification failed, else empty.
  bool VerificationFailure(std::string* code, std::string* message) const;

  void set_ticket_handler(TicketHandler handler) { ticket_handler_ = std::move(handler); }
  void set_want_tickets(bool want) { want_tickets_ = want; }
  // Client: the ticket's session data was damaged; this is a full handshake.
  bool session_refused() const { return session_refused_; }
  void set_keylog_handler(KeylogHandler handler);

 private:
  static int OnNewSessionTicket(gnutls_session_t session, unsigned type, unsigned when,
                                unsigned incoming, const gnutls_datum_t* message);
  static int OnClientHello(gnutls_session_t session, unsigned type, unsigned when, unsigned incoming,
                           const gnutls_datum_t* message);
  static int OnKeylog(gnutls_session_t session, const char* label, const gnutls_datum_t* secret);
  static TlsSession* From(gnutls_session_t session);

  std::shared_ptr<SslContext> context_;
  ngtcp2_crypto_conn_ref* conn_ref_;
  gnutls_session_t session_ = nullptr;
  gnutls_datum_t ticket_key_{};
  std::string servername_;
  TicketHandler ticket_handler_;
  bool want_tickets_ = false;
  bool session_refused_ = false;
  bool pending_ticket_valid_ = false;
  uint32_t pending_ticket_lifetime_ = 0;
  bool pending_ticket_early_data_ = false;
  KeylogHandler keylog_handler_;
};

}  // namespace quicket
