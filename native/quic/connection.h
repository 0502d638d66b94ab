// Connection: one QUIC connection (client or server side), the transport session: it owns its
// ngtcp2_conn, its TLS session, its StreamTable, its timer and the close state machine, and runs
// an Application (raw streams or HTTP/3, chosen by the ALPN) on top. Its methods are spread over
// quic/connection*.cc by concept; connection_bindings.cc is its N-API face.
//
// Ownership: the JS object wrapping a Connection is kept alive by its Engine (a strong reference)
// from creation until the connection has closed and told JS so; after that only JS references keep
// it, and GC frees it. The ngtcp2 and TLS state is released at Terminate(), not at GC, and the
// uv timer is closed there too. JS is never called from inside ngtcp2: callbacks queue events and
// the Engine delivers them once per loop turn, so JS may close or destroy anything from a callback.
#pragma once

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sys/socket.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../common.h"
#include "../application/application.h"
#include "../streams/stream_table.h"
#include "../tls/tls_session.h"
#include "address_validation.h"
#include "connection_events.h"

namespace quicket {

class Engine;
class Http3Application;

struct TransportOptions {
  uint64_t idle_timeout_ms = 30000;
  uint64_t handshake_timeout_ms = 10000;
  uint64_t keep_alive_ms = 0;  // 0: no keep-alive PINGs
  // BBR: measured in bench/ (lossy) it kept a transfer going through random loss that held Cubic
  // to a thirtieth of the speed; on loopback the two were alike.
  ngtcp2_cc_algo congestion_control = NGTCP2_CC_ALGO_BBR;
  uint64_t max_streams_bidi = 128;
  uint64_t max_streams_uni = 128;
  // Initial flow-control windows: what a peer may send before the application reads. A server's
  // are small, since every client may fill them; a client's are large, as browsers' are (Chrome
  // starts at 6/15 MiB): at 50 ms RTT, 16 parallel 1 MiB responses took 0.83 s with the server's
  // windows and 0.72 s with these, while ngtcp2 grew the small ones round trip by round trip
  // (bench lossy). streamWindow/connectionWindow, when given, set both.
  struct Windows {
    uint64_t stream;
    uint64_t connection;
  };
  Windows server_windows = {256 * 1024, 1024 * 1024};
  Windows client_windows = {1024 * 1024, 16 * 1024 * 1024};
  const Windows& windows(bool server) const { return server ? server_windows : client_windows; }
  std::string qlog_dir;  // empty: no qlog
};

struct ClientOptions {
  std::string servername;
  std::vector<std::string> alpn;
  std::string session_data;       // from a ticket; empty for a full handshake
  std::string transport_params;   // the server's 0-RTT transport parameters from the same ticket
  bool early_data = true;
  std::string address_token;      // a NEW_TOKEN token from the same ticket: proves our address, skips Retry
  // Every address the server's name resolved to, in the order to try them; the first is where
  // the connection starts. A silent or refusing address gives way to the next (connection_addresses.cc).
  std::vector<sockaddr_storage> addresses;
  uint64_t attempt_timeout_ms = 250;  // per address while more remain (net's autoSelectFamilyAttemptTimeout)
};

class Connection : public Napi::ObjectWrap<Connection>, private Application::Host {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Connection(const Napi::CallbackInfo& info);
  ~Connection() override;

  // Both return an empty string on success, else why the connection could not be made.
  std::string InitClient(Engine* engine, std::shared_ptr<TlsContext> ssl, const sockaddr* local,
                         const sockaddr* remote, const TransportOptions& transport,
                         const ClientOptions& client);
  std::string InitServer(Engine* engine, std::shared_ptr<TlsContext> ssl, const ServerTicketPolicy& tickets,
                         const sockaddr* local, const sockaddr* remote, const ngtcp2_pkt_hd& initial,
                         const ValidatedAddress& validated, const TransportOptions& transport, bool want_keylog);

  void SetOwner(Napi::Object owner) { owner_ = Napi::Persistent(owner); }
  // Engine-facing: a datagram for this connection, a flush of pending packets, event delivery.
  void Receive(const uint8_t* data, size_t length, const sockaddr* local, const sockaddr* remote);
  // A datagram no connection ID routes here, from this client connection's server: true when it was
  // a stateless reset for it (ngtcp2 checks the token; anything else is dropped unseen).
  bool ReceiveUnrouted(const uint8_t* data, size_t length, const sockaddr* local, const sockaddr* remote);
  bool is_client() const { return !server_; }
  const std::vector<ngtcp2_cid>& connection_ids() const { return cids_; }
  // Writes what is pending. True the first time in a loop turn: the engine then calls EndTurn()
  // once the turn's last flush is done.
  bool Flush();
  // Every packet of this turn has left: starts the pacer's wait and the timer.
  void EndTurn();
  void DeliverEvents(Napi::Env env);
  bool has_events() const { return !events_.empty(); }
  // The engine is going away: send CONNECTION_CLOSE and report a local close.
  void CloseForEngineShutdown();
  // Server: the client's first Initial decrypted (so this is a real QUIC client).
  bool peer_verified() const { return peer_verified_; }
  const sockaddr* remote_address() const { return &remote_.sa; }
  // ICMP says nothing listens at the remote address: a client still handshaking fails with
  // ECONNREFUSED like node:net; anything else ignores it (Engine::OnDestinationError says why).
  void OnPortUnreachable();
  // Releases ngtcp2/TLS state and the timer; called by Engine once 'close' was delivered.
  void Terminate();

 private:
  enum class State { kHandshaking, kEstablished, kFinished, kTerminated };

  // JS methods (connection_bindings.cc): conversions and coded errors only.
  Napi::Value JsOpenStream(const Napi::CallbackInfo& info);
  Napi::Value JsWrite(const Napi::CallbackInfo& info);
  void JsShutdownStream(const Napi::CallbackInfo& info);
  void JsConsume(const Napi::CallbackInfo& info);
  void JsClose(const Napi::CallbackInfo& info);
  void JsDestroy(const Napi::CallbackInfo& info);
  void JsSetWantTickets(const Napi::CallbackInfo& info);
  void JsSetWantKeylog(const Napi::CallbackInfo& info);
  void JsSetKeepAlive(const Napi::CallbackInfo& info);
  // connection_stats.cc: what JS can read about the connection.
  Napi::Value JsStats(const Napi::CallbackInfo& info);
  Napi::Value JsAddresses(const Napi::CallbackInfo& info);
  Napi::Value JsPeerCertificate(const Napi::CallbackInfo& info);
  Napi::Value JsSubmitRequest(const Napi::CallbackInfo& info);
  void JsSubmitResponse(const Napi::CallbackInfo& info);
  void JsCancelPending(const Napi::CallbackInfo& info);
  // connection_paths.cc: the path in use, the peer moving (NAT rebinding) and migrate().
  Napi::Value JsMigrate(const Napi::CallbackInfo& info);
  static int BeginPathValidation(ngtcp2_conn* conn, uint32_t flags, const ngtcp2_path* path,
                                 const ngtcp2_path* fallback, void* self);
  static int PathValidation(ngtcp2_conn* conn, uint32_t flags, const ngtcp2_path* path, const ngtcp2_path* fallback,
                            ngtcp2_path_validation_result result, void* self);
  static int HandshakeConfirmed(ngtcp2_conn* conn, void* self);
  // After ngtcp2 ran (a packet, a timer): starts or undoes a migration, and reports a move to a
  // new path once it is validated.
  void SyncPath();
  void StartMigration();
  void ReturnToReportedPath();
  void ThrowIfFinished(Napi::Env env) const;
  bool JsCallable() const;  // not finished: methods that cannot fail quietly do nothing otherwise

  // What the JS methods ask of the session.
  // Opens a stream of ours; 0, NGTCP2_ERR_STREAM_ID_BLOCKED (the peer's limit) or another error.
  int OpenLocalStream(bool bidi, Stream** opened);
  // Appends to the stream (and FIN); returns the buffered bytes once JS should wait for a drain.
  uint64_t WriteStream(Stream* stream, const uint8_t* data, size_t length, bool fin);
  // Queues 'drain' for the streams whose writers wait and whose buffers fell below the limits.
  void ReleaseWriters();
  void ResetStream(int64_t id, uint64_t code);
  void Consume(int64_t id, uint64_t bytes);
  void CloseGracefully(uint64_t code, std::string reason, uint64_t timeout_ms);
  void CloseNow(uint64_t code);
  void WantTickets(bool on);
  void LogKeys(bool on);
  // A PING after `ms` without sending or receiving anything (0: never), so that a NAT keeps its
  // mapping and a peer stuck at its anti-amplification limit gets bytes to answer.
  void KeepAlive(uint64_t ms);
  enum class RequestStart { kStarted, kLater, kUnavailable, kQuicError, kHttp3Error };
  RequestStart SubmitRequest(std::vector<std::string>& headers, int64_t* id, int* error);
  // The peer allows more streams, or the handshake decided the protocol: retry pending opens.
  void WakePendingOpens();
  // The peer reset a stream (or asked us to stop sending on it).
  void OnPeerAbort(int64_t stream_id, uint64_t code, bool stop_sending);
  void OpenPendingStreams();
  int SubmitResponse(int64_t id, const std::vector<std::string>& headers);  // 0 or an nghttp3 error

  // Application::Host
  ngtcp2_conn* quic() override { return conn_; }
  StreamTable& streams() override { return streams_; }
  void Queue(events::Event event) override;
  void Announce(Stream* stream, bool early) override;
  void QueueData(int64_t stream_id, const uint8_t* data, size_t length, bool fin) override;
  void MarkDirty() override;
  void Credit(int64_t stream_id, size_t bytes) override;
  void FailApplication(uint64_t code) override;

  // Starts HTTP/3 once the ALPN is h3 and the peer allows its three unidirectional streams.
  bool StartHttp3();
  Http3Application* http3_application();  // null unless the application is HTTP/3
  Application::Host* AsHost() { return this; }
  int WritePackets(ngtcp2_path_storage* ps, uint64_t ts);

  // ngtcp2 callbacks (user_data is the Connection).
  static ngtcp2_conn* GetConn(ngtcp2_crypto_conn_ref* ref);
  static void Rand(uint8_t* dest, size_t destlen, const ngtcp2_rand_ctx* ctx);
  static int GetNewConnectionId(ngtcp2_conn* conn, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void* self);
  static int RemoveConnectionId(ngtcp2_conn* conn, const ngtcp2_cid* cid, void* self);
  static int HandshakeCompleted(ngtcp2_conn* conn, void* self);
  static int ReceiveNewToken(ngtcp2_conn* conn, const uint8_t* token, size_t tokenlen, void* self);
  static int ReceiveCryptoData(ngtcp2_conn* conn, ngtcp2_encryption_level level, uint64_t offset,
                               const uint8_t* data, size_t datalen, void* self);
  static int StreamOpened(ngtcp2_conn* conn, int64_t stream_id, void* self);
  static int ReceiveStreamData(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id, uint64_t offset,
                               const uint8_t* data, size_t datalen, void* self, void* stream_data);
  static int AckedStreamData(ngtcp2_conn* conn, int64_t stream_id, uint64_t offset, uint64_t datalen,
                             void* self, void* stream_data);
  static int StreamClosed(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id, uint64_t app_error_code,
                          void* self, void* stream_data);
  static int StreamReset(ngtcp2_conn* conn, int64_t stream_id, uint64_t final_size,
                         uint64_t app_error_code, void* self, void* stream_data);
  static int StreamStopSending(ngtcp2_conn* conn, int64_t stream_id, uint64_t app_error_code,
                               void* self, void* stream_data);
  static int ExtendMaxLocalStreams(ngtcp2_conn* conn, uint64_t max_streams, void* self);
  static int ExtendMaxRemoteStreamsBidi(ngtcp2_conn* conn, uint64_t max_streams, void* self);
  static int ExtendMaxStreamData(ngtcp2_conn* conn, int64_t stream_id, uint64_t max_data, void* self,
                                 void* stream_data);
  static void OnTimer(uv_timer_t* timer);
  static void WriteQlog(void* self, uint32_t flags, const void* data, size_t length);

  void InitCommon(Engine* engine, std::shared_ptr<TlsContext> ssl, const sockaddr* local,
                  const sockaddr* remote);
  void FillCallbacks(ngtcp2_callbacks* callbacks, bool server);
  // `cid` names the qlog file when transport.qlog_dir is set.
  void FillSettings(ngtcp2_settings* settings, const TransportOptions& transport, const ngtcp2_cid& cid);
  void FillTransportParams(ngtcp2_transport_params* params, const TransportOptions& transport);
  void OnHandshakeCompleted();
  // The TLS session's handshake state (the SSL object) goes once the peer has nothing more to
  // send it: a server's at once after its handshake completes; a client's once the handshake is
  // confirmed and the server's ticket came (servers send theirs with the handshake), or 3 PTOs
  // after confirmation without one (time for a lost ticket to be sent again). Released outside
  // ngtcp2's calls, after a packet or at the timer; promptly, so the next handshakes reuse the
  // memory (a late release leaves holes in the heap).
  void ScheduleTlsRelease(uint64_t at) { tls_release_at_ = at; }
  void MaybeReleaseTls(uint64_t now);
  void ReplayRejectedEarlyData();
  void Reopen(StreamTable::Map streams, bool http3);
  std::string StartClient(const ClientOptions& client);
  bool RetryWithoutTicket(int error);
  // Abandons the current handshake attempt (routes, ngtcp2 and TLS state); its streams wait in
  // retried_streams_ for the next attempt.
  void AbandonAttempt();
  // A client still handshaking that never heard from its current address moves to the next one.
  bool TryNextAddress();
  bool MayTryNextAddress() const;
  uint64_t AttemptDeadline() const;
  void OnTicket(std::string session_data, uint32_t lifetime, bool early_data);
  bool GracefulCloseDone(uint64_t now) const;
  void ScheduleTimer();
  void HandleLibraryError(int error);
  void SendConnectionClose(const ngtcp2_ccerr& error);
  void Finish(events::Close info);
  void KeepFinalState();  // before Terminate releases ngtcp2 and TLS

  Engine* engine_ = nullptr;
  State state_ = State::kHandshaking;
  bool server_ = false;
  ngtcp2_conn* conn_ = nullptr;
  ngtcp2_crypto_conn_ref conn_ref_{GetConn, this};
  std::unique_ptr<TlsSession> tls_;
  uint64_t tls_release_at_ = 0;  // 0: not scheduled
  std::shared_ptr<TlsContext> ssl_;
  uv_timer_t* timer_ = nullptr;
  FILE* qlog_ = nullptr;
  InetAddress local_{};
  InetAddress remote_{};
  ngtcp2_path path_{};
  std::vector<ngtcp2_cid> cids_;  // every CID routed to us by the engine
  // local_/remote_ are the path JS was last told of; ngtcp2 may be trying another (connection_paths.cc).
  bool validating_ = false;        // a validation that decides a path change is under way...
  InetAddress validating_local_{};   // ...of this path
  InetAddress validating_remote_{};
  bool path_validated_ = false;    // it succeeded in this ngtcp2 call: SyncPath reports it
  bool confirmed_ = false;         // client: HANDSHAKE_DONE came; migrations may start
  bool migrating_ = false;         // client: migrate() is waiting for its path to validate...
  bool migration_started_ = false;  // ...and ngtcp2 was told (once the handshake is confirmed)
  bool migration_failed_ = false;   // its path failed: go back to the previous one
  InetAddress migration_local_{};

  StreamTable streams_;
  uint64_t streams_opened_ = 0;  // by either side, HTTP/3's own streams aside (stats())
  ngtcp2_conn_info final_info_{};  // the last numbers, for stats() once ngtcp2's state is gone
  bool final_info_kept_ = false;
  std::string peer_certificate_;  // DER, kept by Terminate for getPeerCertificate() after the close
  std::vector<events::Event> events_;
  std::vector<int64_t> waiting_writers_;  // streams whose JS writer waits for a drain
  bool pending_opens_due_ = false;  // OpenPendingStreams at the next Flush

  std::unique_ptr<Application> app_;  // raw streams until HTTP/3 starts
  bool http3_wanted_ = false;  // client offered only h3 (or negotiated it); server negotiated h3
  bool app_failed_ = false;    // close_error_ holds the application's error to send
  bool peer_verified_ = false;
  bool early_attempted_ = false;
  // Client: what connect() asked for (RetryWithoutTicket starts over from it), and the streams of
  // an abandoned first attempt, reopened once the retried handshake completes.
  TransportOptions transport_;
  ClientOptions client_;
  bool retried_ = false;
  size_t address_index_ = 0;          // into client_.addresses
  uint64_t attempt_started_ = 0;      // when the handshake with the current address began
  bool heard_from_peer_ = false;      // a datagram for this attempt arrived
  bool stateless_reset_ = false;      // the peer reset the connection (it lost our state)
  std::string address_token_;         // client: the server's newest NEW_TOKEN, carried in tickets
  bool retried_http3_ = false;
  StreamTable::Map retried_streams_;
  bool want_keylog_ = false;
  bool early_rejected_ = false;
  bool want_tickets_ = false;
  bool close_requested_ = false;
  bool flushed_this_turn_ = false;  // packets written since the last EndTurn()
  uint64_t close_deadline_ = 0;  // a graceful close gives up waiting for streams then
  bool resumed_reported_ = false;
  ngtcp2_ccerr close_error_{};
  std::string close_reason_;

  Napi::ObjectReference owner_;
};

}  // namespace quicket
