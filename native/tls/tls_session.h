// TlsSession: one OpenSSL session per QUIC connection. It keeps OpenSSL out of Connection: the
// handshake itself is driven by ngtcp2's crypto backend (ngtcp2_crypto_ossl); this class sets the
// session up and answers questions about it (ALPN, resumption, early data, verification), builds
// the client's tickets and applies the server's ticket and 0-RTT policy.
//
// Ownership: Connection owns it and frees it outside of any ngtcp2 or OpenSSL callback. The SSL
// object points back to it (ex_data) only while it lives. Once the handshake is over the SSL
// object can go before this does (ReleaseHandshakeState): what JS may still ask is kept.
#pragma once

#include <ngtcp2/ngtcp2_crypto.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ticket_keys.h"
#include "tls_context.h"

struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;
struct ngtcp2_crypto_ossl_ctx;
struct evp_cipher_ctx_st;
struct evp_mac_ctx_st;

namespace quicket {

// What a server connection needs to issue and accept tickets: its engine's key ring, and a digest
// of the engine's 0-RTT-relevant transport settings. A ticket issued under other settings still
// resumes but gets no 0-RTT (the client's remembered limits may exceed today's).
struct ServerTicketPolicy {
  std::shared_ptr<const TicketKeyRing> keys;
  std::string settings_digest;
  std::shared_ptr<ReplayStore> replay_store;  // the engine's `antiReplayStore`; null: the TlsContext's
};

class TlsSession {
 public:
  // lifetime: seconds the server grants; early_data: the ticket allows 0-RTT.
  using TicketHandler = std::function<void(std::string session_data, uint32_t lifetime, bool early_data)>;
  using KeylogHandler = std::function<void(std::string line)>;

  TlsSession(std::shared_ptr<TlsContext> context, ngtcp2_crypto_conn_ref* conn_ref);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Each Init returns an empty string on success, else the reason.
  // Client: `session_data` from a ticket (empty: full handshake); `early_data`: announce 0-RTT if
  // the ticket allows it.
  std::string InitClient(const std::string& servername, const std::vector<std::string>& alpn,
                         const std::string& session_data, bool early_data);
  std::string InitServer(ServerTicketPolicy policy);

  // For ngtcp2_conn_set_tls_native_handle.
  void* native_handle() const;
  // After the handshake the SSL object and ngtcp2_crypto_ossl's receive buffer are most of a
  // connection's TLS memory (about 14 KB) and no longer needed: packet protection has its own keys
  // in ngtcp2, and key updates derive from those. Frees them, keeping the answers below (ALPN,
  // server name, resumption, 0-RTT, the peer's certificate). No more TLS data can be read after.
  void ReleaseHandshakeState();
  bool released() const { return released_; }
  // Client: the ClientHello will announce 0-RTT; CancelEarlyData() takes that back before it is sent.
  bool early_data_offered() const { return early_data_offered_; }
  void CancelEarlyData();
  // Client: the ticket's session data did not decode; this is a full handshake.
  bool session_refused() const { return session_refused_; }
  // Client: NewSessionTickets the server sent so far, whether or not JS wanted them.
  uint32_t tickets_received() const { return tickets_received_; }

  std::string alpn() const;
  std::string servername() const;
  bool resumed() const;
  bool early_data_accepted() const;
  // The peer's certificate (DER), or empty when it sent none.
  std::string PeerCertificateDer() const;
  // Client: a human-readable reason and a code when certificate verification failed, else false.
  bool VerificationFailure(std::string* code, std::string* message) const;

  void set_ticket_handler(TicketHandler handler) { ticket_handler_ = std::move(handler); }
  void set_keylog_handler(KeylogHandler handler);

  // Context-wide OpenSSL callbacks that find their TlsSession through the SSL object.
  static void InstallCallbacks(ssl_ctx_st* ctx);
  static void InstallKeylog(ssl_ctx_st* ctx);

 private:
  // Where this server session records the ClientHellos it lets send 0-RTT.
  ReplayStore& replay_store() const { return policy_.replay_store ? *policy_.replay_store : context_->replay_store(); }
  static TlsSession* From(const ssl_st* ssl);
  std::string Create();
  void FreeHandshakeState();
  void OnNewSession(ssl_session_st* session);
  std::string TicketAppData() const;
  // Server, on a decrypted ticket: false when it must not resume at all.
  bool AcceptTicketAppData(const uint8_t* data, size_t length);
  uint32_t QuicVersion() const;

  static int OnNewSessionCallback(ssl_st* ssl, ssl_session_st* session);
  static int OnClientHello(ssl_st* ssl, int* alert, void* arg);
  static int OnGenerateTicket(ssl_st* ssl, void* arg);
  static int OnDecryptTicket(ssl_st* ssl, ssl_session_st* session, const unsigned char* key_name, size_t key_name_length,
                             int status, void* arg);
  static int OnTicketKey(ssl_st* ssl, unsigned char* key_name, unsigned char* iv, evp_cipher_ctx_st* cipher,
                         evp_mac_ctx_st* mac, int encrypt);
  static int OnAllowEarlyData(ssl_st* ssl, void* arg);
  static void OnKeylog(const ssl_st* ssl, const char* line);

  std::shared_ptr<TlsContext> context_;
  ngtcp2_crypto_conn_ref* conn_ref_;
  ngtcp2_crypto_ossl_ctx* ossl_ = nullptr;
  ssl_st* ssl_ = nullptr;
  std::string servername_;
  // What the accessors answer once the SSL object is gone (ReleaseHandshakeState).
  bool released_ = false;
  std::string alpn_;
  std::string peer_certificate_;
  bool resumed_ = false;
  bool early_data_accepted_ = false;
  ServerTicketPolicy policy_;
  TicketHandler ticket_handler_;
  KeylogHandler keylog_handler_;
  bool session_refused_ = false;
  uint32_t tickets_received_ = 0;
  bool early_data_offered_ = false;
  bool early_data_refused_ = false;  // server: this ticket may resume but gets no 0-RTT
};

}  // namespace quicket
