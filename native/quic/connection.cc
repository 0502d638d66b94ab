// Connection, the transport session: ngtcp2_conn and TLS set up for a client or a server, the
// handshake, packets in and out (in GSO batches), and the timer. Streams, closing, resumption and
// the JS face live in the connection_*.cc files beside this one.
#include "connection.h"

#include <algorithm>
#include <cstring>

#include "../engine.h"
#include "../memory_accounting.h"
#include "../application/raw_application.h"
#include "../tls/crypto.h"
#include "../net/address.h"

namespace quicket {

namespace {
constexpr size_t kCidLength = 18;
constexpr size_t kMaxPacketsPerFlush = 128;
// UDP payload sizes tried by path MTU discovery on loopback: 8 KiB, then ngtcp2's defaults. Not
// 16 KiB: ngtcp2 keeps a decryption buffer as large as the largest packet a connection received
// for as long as the connection lives, so 16 KiB probes cost every loopback connection 14 KiB,
// and 8 KiB packets moved bulk data as fast for less CPU. The first probe leaves the handshake
// with the initial congestion window (10 x 1200 bytes) not yet full: a 16 KiB one overfilled
// it, and the first request or response then waited for the probe's acknowledgement.
constexpr uint16_t kLoopbackProbes[] = {8192, 1454 - 48, 1390 - 48, 1280 - 48, 1492 - 48};
constexpr uint16_t kLoopbackMaxPayload = 8192;
constexpr size_t kActiveConnectionIdLimit = 8;  // FillTransportParams says why

bool RandomCid(ngtcp2_cid* cid, size_t length) {
  cid->datalen = length;
  return RandomBytes(cid->data, length);
}


}  // namespace

Connection::~Connection() { Terminate(); }

void Connection::InitCommon(Engine* engine, std::shared_ptr<TlsContext> ssl, const sockaddr* local,
                            const sockaddr* remote) {
  engine_ = engine;
  ssl_ = std::move(ssl);
  memcpy(&local_, local, AddressLength(local));
  memcpy(&remote_, remote, AddressLength(remote));
  path_.local = {reinterpret_cast<sockaddr*>(&local_), static_cast<ngtcp2_socklen>(AddressLength(local))};
  path_.remote = {reinterpret_cast<sockaddr*>(&remote_), static_cast<ngtcp2_socklen>(AddressLength(remote))};
  // The first IDs, the spare ones the peer accepts (active_connection_id_limit) and, on a server,
  // the client's original destination ID: reserved at once, not grown by doubling.
  cids_.reserve(kActiveConnectionIdLimit + 1);
  timer_ = new uv_timer_t;
  uv_timer_init(engine->loop(), timer_);
  // The engine's socket alone keeps the loop alive (engine.unref() lets the process exit).
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  timer_->data = this;
  app_ = std::make_unique<RawApplication>(AsHost());
}

void Connection::FillCallbacks(ngtcp2_callbacks* callbacks, bool server) {
  memset(callbacks, 0, sizeof(*callbacks));
  if (server) {
    callbacks->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    callbacks->client_initial = ngtcp2_crypto_client_initial_cb;
    callbacks->recv_retry = ngtcp2_crypto_recv_retry_cb;
    callbacks->recv_new_token = ReceiveNewToken;
  }
  callbacks->recv_crypto_data = ReceiveCryptoData;
  callbacks->encrypt = ngtcp2_crypto_encrypt_cb;
  callbacks->decrypt = ngtcp2_crypto_decrypt_cb;
  callbacks->hp_mask = ngtcp2_crypto_hp_mask_cb;
  callbacks->update_key = ngtcp2_crypto_update_key_cb;
  callbacks->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  callbacks->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  callbacks->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  callbacks->begin_path_validation = BeginPathValidation;
  callbacks->path_validation = PathValidation;
  callbacks->handshake_confirmed = HandshakeConfirmed;
  callbacks->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  callbacks->rand = Rand;
  callbacks->get_new_connection_id = GetNewConnectionId;
  callbacks->remove_connection_id = RemoveConnectionId;
  callbacks->handshake_completed = HandshakeCompleted;
  callbacks->stream_open = StreamOpened;
  callbacks->recv_stream_data = ReceiveStreamData;
  callbacks->acked_stream_data_offset = AckedStreamData;
  callbacks->stream_close = StreamClosed;
  callbacks->stream_reset = StreamReset;
  callbacks->stream_stop_sending = StreamStopSending;
  callbacks->extend_max_local_streams_bidi = ExtendMaxLocalStreams;
  callbacks->extend_max_local_streams_uni = ExtendMaxLocalStreams;
  callbacks->extend_max_stream_data = ExtendMaxStreamData;
  callbacks->extend_max_remote_streams_bidi = ExtendMaxRemoteStreamsBidi;
  callbacks->recv_stateless_reset2 = [](ngtcp2_conn*, const ngtcp2_pkt_stateless_reset2*, void* self) {
    static_cast<Connection*>(self)->stateless_reset_ = true;  // ngtcp2 checked the token
    return 0;
  };
}

void Connection::FillSettings(ngtcp2_settings* settings, const TransportOptions& transport, const ngtcp2_cid& cid) {
  ngtcp2_settings_default(settings);
  if (!transport.qlog_dir.empty()) {
    static const char digits[] = "0123456789abcdef";
    std::string name = transport.qlog_dir + (server_ ? "/server-" : "/client-");
    for (size_t i = 0; i < cid.datalen; i++) {
      name.push_back(digits[cid.data[i] >> 4]);
      name.push_back(digits[cid.data[i] & 15]);
    }
    qlog_ = fopen((name + ".sqlog").c_str(), "w");
    if (qlog_) settings->qlog_write = WriteQlog;
  }
  settings->initial_ts = Now();
  settings->handshake_timeout = transport.handshake_timeout_ms * NGTCP2_MILLISECONDS;
  settings->cc_algo = transport.congestion_control;
  if (IsLoopback(path_.remote.addr)) {
    // Loopback carries 64 KiB datagrams: path MTU discovery confirms 8 KiB packets there, a
    // sixth of the per-packet work (AEAD setup, headers, ACKs, GSO segments) of Ethernet-sized
    // ones. The probe also proves the peer takes them (aioquic does not). ngtcp2's own probes
    // follow, for a connection that moves off loopback.
    settings->max_tx_udp_payload_size = kLoopbackMaxPayload;
    settings->pmtud_probes = kLoopbackProbes;
    settings->pmtud_probeslen = sizeof(kLoopbackProbes) / sizeof(kLoopbackProbes[0]);
  }
  // Let ngtcp2 grow flow-control windows for fast readers, up to these caps.
  settings->max_stream_window = 6 * 1024 * 1024;
  settings->max_window = 16 * 1024 * 1024;
}

void Connection::FillTransportParams(ngtcp2_transport_params* params, const TransportOptions& transport) {
  ngtcp2_transport_params_default(params);
  const TransportOptions::Windows& windows = transport.windows(server_);
  params->initial_max_stream_data_bidi_local = windows.stream;
  params->initial_max_stream_data_bidi_remote = windows.stream;
  params->initial_max_stream_data_uni = windows.stream;
  params->initial_max_data = windows.connection;
  params->initial_max_streams_bidi = transport.max_streams_bidi;
  params->initial_max_streams_uni = transport.max_streams_uni;
  params->max_idle_timeout = transport.idle_timeout_ms * NGTCP2_MILLISECONDS;
  // Spare connection IDs for the peer: each path change uses a fresh one, and a client whose
  // migration failed needs another to go back before the peer could replace the first.
  params->active_connection_id_limit = kActiveConnectionIdLimit;
}

std::string Connection::InitClient(Engine* engine, std::shared_ptr<TlsContext> ssl, const sockaddr* local,
                                   const sockaddr* remote, const TransportOptions& transport,
                                   const ClientOptions& client) {
  InitCommon(engine, std::move(ssl), local, remote);
  transport_ = transport;
  client_ = client;
  attempt_started_ = Now();
  return StartClient(client);
}

// Creates the ngtcp2 connection and TLS session of a client: at connect(), and again without the
// ticket when a resumption attempt failed (RetryWithoutTicket).
std::string Connection::StartClient(const ClientOptions& client) {
  tls_ = std::make_unique<TlsSession>(ssl_, &conn_ref_);
  ngtcp2_cid dcid, scid;
  if (!RandomCid(&dcid, kCidLength) || !RandomCid(&scid, kCidLength)) return "no randomness for connection IDs";
  ngtcp2_callbacks callbacks;
  FillCallbacks(&callbacks, false);
  ngtcp2_settings settings;
  FillSettings(&settings, transport_, dcid);
  if (!client.address_token.empty()) {
    settings.token = reinterpret_cast<const uint8_t*>(client_.address_token.data());
    settings.tokenlen = client_.address_token.size();
  }
  ngtcp2_transport_params params;
  FillTransportParams(&params, transport_);
  int rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path_, NGTCP2_PROTO_VER_V1, &callbacks,
                                  &settings, &params, memory::Ngtcp2Allocator(), this);
  if (rv != 0) return ngtcp2_strerror(rv);
  engine_->AddConnectionId(scid, this);
  cids_.push_back(scid);
  KeepAlive(transport_.keep_alive_ms);

  // 0-RTT needs the server's remembered limits as well as a ticket that allows it.
  bool early_data = client.early_data && !client.transport_params.empty();
  std::string error = tls_->InitClient(client.servername, client.alpn, client.session_data, early_data);
  if (!error.empty()) return error;
  ngtcp2_conn_set_tls_native_handle(conn_, tls_->native_handle());
  if (tls_->session_refused()) {
    // Damaged session data: a full handshake, and the application hears why.
    Queue(events::TicketRejected{"malformed"});
  } else if (tls_->early_data_offered()) {
    // The remembered server limits let streams open (and carry 0-RTT) before the handshake.
    rv = ngtcp2_conn_decode_and_set_0rtt_transport_params(
        conn_, reinterpret_cast<const uint8_t*>(client.transport_params.data()), client.transport_params.size());
    early_attempted_ = rv == 0;
    if (!early_attempted_) tls_->CancelEarlyData();
  }
  http3_wanted_ = client.alpn.size() == 1 && client.alpn[0] == "h3";
  // With remembered limits HTTP/3 can start now, so requests ride the 0-RTT flight.
  if (http3_wanted_ && early_attempted_ && !StartHttp3()) return "cannot start HTTP/3";
  WantTickets(want_tickets_);
  LogKeys(want_keylog_);
  // The first flight waits for the next loop turn so streams opened in this tick can ride it.
  MarkDirty();
  return "";
}

std::string Connection::InitServer(Engine* engine, std::shared_ptr<TlsContext> ssl, const ServerTicketPolicy& tickets,
                                   const sockaddr* local, const sockaddr* remote, const ngtcp2_pkt_hd& initial,
                                   const ValidatedAddress& validated, const TransportOptions& transport,
                                   bool want_keylog) {
  InitCommon(engine, std::move(ssl), local, remote);
  server_ = true;
  tls_ = std::make_unique<TlsSession>(ssl_, &conn_ref_);
  ngtcp2_cid scid;
  if (!RandomCid(&scid, kCidLength)) return "no randomness for connection IDs";
  ngtcp2_callbacks callbacks;
  FillCallbacks(&callbacks, true);
  ngtcp2_settings settings;
  FillSettings(&settings, transport, initial.dcid);
  // A token that proved the client's address lifts the 3x amplification limit at once.
  if (validated.token_type != NGTCP2_TOKEN_TYPE_UNKNOWN) {
    settings.token = initial.token;
    settings.tokenlen = initial.tokenlen;
    settings.token_type = validated.token_type;
  }
  ngtcp2_transport_params params;
  FillTransportParams(&params, transport);
  params.original_dcid = validated.retried ? validated.original_dcid : initial.dcid;
  params.original_dcid_present = 1;
  if (validated.retried) {
    params.retry_scid = initial.dcid;
    params.retry_scid_present = 1;
  }
  params.stateless_reset_token_present = 1;
  if (!engine->ResetToken(scid, params.stateless_reset_token)) return "cannot derive a stateless reset token";
  int rv = ngtcp2_conn_server_new(&conn_, &initial.scid, &scid, &path_, initial.version, &callbacks,
                                  &settings, &params, memory::Ngtcp2Allocator(), this);
  if (rv != 0) return ngtcp2_strerror(rv);
  KeepAlive(transport.keep_alive_ms);
  // Retransmitted Initials still carry the client's chosen DCID: route them here too.
  engine_->AddConnectionId(initial.dcid, this);
  cids_.push_back(initial.dcid);
  engine_->AddConnectionId(scid, this);
  cids_.push_back(scid);
  std::string error = tls_->InitServer(tickets);
  if (!error.empty()) return error;
  LogKeys(want_keylog);
  ngtcp2_conn_set_tls_native_handle(conn_, tls_->native_handle());
  return "";
}

// ---- ngtcp2 callbacks ----------------------------------------------------------------------

ngtcp2_conn* Connection::GetConn(ngtcp2_crypto_conn_ref* ref) {
  return static_cast<Connection*>(ref->user_data)->conn_;
}

void Connection::Rand(uint8_t* dest, size_t destlen, const ngtcp2_rand_ctx*) {
  // ngtcp2 uses these for PATH_CHALLENGE data and packet-number skips; it has no way to fail.
  if (!RandomBytes(dest, destlen)) memset(dest, 0, destlen);
}

int Connection::GetNewConnectionId(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void* user) {
  auto* self = static_cast<Connection*>(user);
  if (!RandomCid(cid, cidlen) ||
      !self->engine_->ResetToken(*cid, token)) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  self->engine_->AddConnectionId(*cid, self);
  self->cids_.push_back(*cid);
  return 0;
}

int Connection::RemoveConnectionId(ngtcp2_conn*, const ngtcp2_cid* cid, void* user) {
  auto* self = static_cast<Connection*>(user);
  self->engine_->RemoveConnectionId(*cid);
  self->cids_.erase(std::remove_if(self->cids_.begin(), self->cids_.end(),
                                   [cid](const ngtcp2_cid& ours) { return ngtcp2_cid_eq(&ours, cid); }),
                    self->cids_.end());
  return 0;
}

int Connection::ReceiveCryptoData(ngtcp2_conn* conn, ngtcp2_encryption_level level, uint64_t offset,
                                  const uint8_t* data, size_t datalen, void* user) {
  auto* self = static_cast<Connection*>(user);
  // JS hears of a server connection only once the client's Initial has decrypted.
  if (self->server_ && !self->peer_verified_) {
    self->peer_verified_ = true;
    self->Queue(events::NewConnection{});
  }
  if (self->tls_->released()) {
    // A client ignores a ticket that comes after its TLS state went. A server expects nothing
    // after the client's Finished (QUIC forbids TLS KeyUpdate, RFC 9001 §6): unexpected_message.
    if (!self->server_) return 0;
    ngtcp2_conn_set_tls_alert(conn, 10);
    return NGTCP2_ERR_CRYPTO;
  }
  int rv = ngtcp2_crypto_recv_crypto_data_cb(conn, level, offset, data, datalen, user);
  // The server knows the ALPN once the ClientHello is processed: decide on HTTP/3 once, here.
  if (rv == 0 && self->server_ && level == NGTCP2_ENCRYPTION_LEVEL_INITIAL) {
    self->http3_wanted_ = self->tls_->alpn() == "h3";
    // Resumption is decided with the ClientHello: JS knows it before any 0-RTT stream arrives.
    if (self->tls_->resumed() && !self->resumed_reported_) {
      self->resumed_reported_ = true;
      self->Queue(events::Resumed{});
    }
  }
  return rv;
}

int Connection::HandshakeCompleted(ngtcp2_conn*, void* user) {
  static_cast<Connection*>(user)->OnHandshakeCompleted();
  return 0;
}

// The client keeps the server's newest NEW_TOKEN in the tickets it emits, even those already queued.
int Connection::ReceiveNewToken(ngtcp2_conn*, const uint8_t* token, size_t tokenlen, void* user) {
  auto* self = static_cast<Connection*>(user);
  self->address_token_.assign(reinterpret_cast<const char*>(token), tokenlen);
  for (events::Event& event : self->events_) {
    if (auto* ticket = std::get_if<events::Ticket>(&event)) ticket->address_token = self->address_token_;
  }
  return 0;
}

void Connection::OnHandshakeCompleted() {
  state_ = State::kEstablished;
  if (server_) ScheduleTlsRelease(Now());  // its tickets went out with the handshake
  if (server_ && engine_) {
    engine_->HandshakeCompleted(this);
    // A token for the client's next connection: it skips Retry and the amplification limit.
    std::string token = engine_->address_validation().MakeNewToken(remote_address());
    if (!token.empty()) {
      ngtcp2_conn_submit_new_token(conn_, reinterpret_cast<const uint8_t*>(token.data()), token.size());
    }
  }
  for (auto& [id, stream] : streams_) stream->send.Retain(false);
  // What connect() asked for served the attempts (retries, other addresses), all over now; a
  // resumed connection's copy of its ticket goes with it.
  if (!server_) client_ = ClientOptions{};
  if (!server_) http3_wanted_ = tls_->alpn() == "h3";
  if (http3_wanted_) StartHttp3();
  if (!server_ && early_attempted_ && !tls_->early_data_accepted()) {
    // OpenSSL tells the client about 0-RTT only now; replay what the early streams carried.
    ReplayRejectedEarlyData();
  } else if (!retried_streams_.empty()) {
    // The first attempt's streams, kept when it was abandoned: resent from their first byte.
    early_rejected_ = true;
    Reopen(std::move(retried_streams_), retried_http3_);
    retried_streams_.clear();
    Queue(events::EarlyDataRejected{});
  }
  bool early_accepted = server_ ? tls_->early_data_accepted() : (early_attempted_ && !early_rejected_);
  Queue(events::Handshake{tls_->alpn(), tls_->servername(), tls_->resumed(),
                          early_accepted   ? events::EarlyData::kAccepted
                          : early_rejected_ ? events::EarlyData::kRejected
                                            : events::EarlyData::kNone});
  // Streams and requests that waited for the handshake (and its ALPN) can open now.
  WakePendingOpens();
}

// ---- packets, timers ---------------------------------------------------------------------

void Connection::Receive(const uint8_t* data, size_t length, const sockaddr* local, const sockaddr* remote) {
  if (state_ == State::kFinished || state_ == State::kTerminated) return;
  ngtcp2_path path{{const_cast<sockaddr*>(local), static_cast<ngtcp2_socklen>(AddressLength(local))},
                   {const_cast<sockaddr*>(remote), static_cast<ngtcp2_socklen>(AddressLength(remote))},
                   nullptr};
  ngtcp2_pkt_info info{};
  heard_from_peer_ = true;  // routed here by our connection ID: the address answers
  uint64_t now = Now();
  int rv = ngtcp2_conn_read_pkt(conn_, &path, &info, data, length, now);
  if (rv != 0) {
    HandleLibraryError(rv);
    return;
  }
  MaybeReleaseTls(now);
  SyncPath();
  MarkDirty();
}

// A stateless reset carries no connection ID of ours (RFC 9000 10.3): its first bytes are random,
// so only its sender's address brings it here. Only the reset's own verdict counts.
bool Connection::ReceiveUnrouted(const uint8_t* data, size_t length, const sockaddr* local, const sockaddr* remote) {
  if (server_ || state_ != State::kEstablished || !SameAddress(remote_address(), remote)) return false;
  ngtcp2_path path{{const_cast<sockaddr*>(local), static_cast<ngtcp2_socklen>(AddressLength(local))},
                   {const_cast<sockaddr*>(remote), static_cast<ngtcp2_socklen>(AddressLength(remote))},
                   nullptr};
  ngtcp2_pkt_info info{};
  int rv = ngtcp2_conn_read_pkt(conn_, &path, &info, data, length, Now());
  if (rv != NGTCP2_ERR_DRAINING || !stateless_reset_) return false;
  HandleLibraryError(rv);
  return true;
}

void Connection::KeepAlive(uint64_t ms) {
  if (!conn_) return;
  ngtcp2_conn_set_keep_alive_timeout(conn_, ms == 0 ? UINT64_MAX : ms * NGTCP2_MILLISECONDS);
  ScheduleTimer();
}

void Connection::MarkDirty() {
  if (engine_ && state_ != State::kFinished && state_ != State::kTerminated) engine_->MarkDirty(this);
}

bool Connection::Flush() {
  if (state_ == State::kFinished || state_ == State::kTerminated || !conn_) return false;
  if (pending_opens_due_) OpenPendingStreams();
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  uint64_t ts = Now();
  int rv = WritePackets(&ps, ts);
  if (rv != 0) {
    HandleLibraryError(rv);
    return false;
  }
  if (close_requested_ && state_ == State::kEstablished && GracefulCloseDone(ts)) {
    SendConnectionClose(close_error_);
    events::Close info;
    info.quic_code = close_error_.error_code;
    info.reason = close_reason_;
    Finish(std::move(info));
    return false;
  }
  bool first = !flushed_this_turn_;
  flushed_this_turn_ = true;
  return first;
}

// The pacer counts a loop turn's packets as one burst. Started after each flush instead, it held
// back what JS wrote in answer to this turn's events (a stream opened by the handshake, a response)
// until the next timer, at least 1 ms later: an 8 KiB path MTU probe alone earns a wait of about
// one RTT, rounded up to the timer's millisecond.
void Connection::EndTurn() {
  if (!flushed_this_turn_) return;
  flushed_this_turn_ = false;
  if (state_ == State::kFinished || state_ == State::kTerminated || !conn_) return;
  ngtcp2_conn_update_pkt_tx_time(conn_, Now());
  ScheduleTimer();
}

namespace {
// Packets are written back to back into the engine's send buffer and leave in GSO batches:
// equal-sized packets, the last of a batch possibly shorter.
class PacketBatch : public Application::PacketSink {
 public:
  PacketBatch(ngtcp2_conn* conn, Engine* engine, ngtcp2_path_storage* ps, uint64_t ts)
      : conn_(conn), engine_(engine), ps_(ps), ts_(ts), batch_(engine->send_buffer()),
        packet_size_(ngtcp2_conn_get_max_tx_udp_payload_size(conn)) {
    ngtcp2_path_storage_zero(&batch_path_);
  }
  ~PacketBatch() override { Send(); }

  ngtcp2_ssize Write(const Application::Chunk& chunk, uint32_t flags, ngtcp2_ssize* accepted) override {
    ngtcp2_pkt_info info{};
    size_t max_size = std::min(packet_size_, Engine::kSendBufferSize - batched_);
    return ngtcp2_conn_writev_stream(conn_, &ps_->path, &info, batch_ + batched_, max_size, accepted, flags,
                                     chunk.stream_id, chunk.vecs, chunk.count, ts_);
  }

  void Sent(size_t n) override {
    uint8_t* packet = batch_ + batched_;
    if (batched_ > 0 && (n > segment_ || !ngtcp2_path_eq(&ps_->path, &batch_path_.path))) {
      // Only the last packet of a batch may differ in size, and a batch has one path (a path
      // being validated interleaves with the current one): this packet starts the next batch.
      engine_->SendOnPath(batch_, batched_, segment_, batch_path_.path);
      memmove(batch_, packet, n);
      batched_ = 0;
      segment_ = 0;
    }
    if (batched_ == 0) ngtcp2_path_copy(&batch_path_.path, &ps_->path);
    if (segment_ == 0) segment_ = n;
    batched_ += n;
    if (n < segment_ || Engine::kSendBufferSize - batched_ < packet_size_) Send();
  }

 private:
  void Send() {
    if (batched_ > 0) engine_->SendOnPath(batch_, batched_, segment_, batch_path_.path);
    batched_ = 0;
    segment_ = 0;
  }

  ngtcp2_conn* conn_;
  Engine* engine_;
  ngtcp2_path_storage* ps_;
  ngtcp2_path_storage batch_path_;  // where the batched packets go
  uint64_t ts_;
  uint8_t* batch_;
  size_t packet_size_;
  size_t batched_ = 0;
  size_t segment_ = 0;
};
}  // namespace

// Writes up to kMaxPacketsPerFlush packets, the application choosing the stream data. Returns 0
// or a fatal ngtcp2/nghttp3 error.
int Connection::WritePackets(ngtcp2_path_storage* ps, uint64_t ts) {
  // A client still handshaking first writes handshake packets alone: ngtcp2 1.11 (where this was
  // found) coalesced a retransmitted Initial with 0-RTT data into a datagram under 1200 bytes,
  // which servers must drop (RFC 9000 §14.1), so a lost first flight never recovered. Kept on
  // 1.24: it costs a packet boundary during the handshake, and the lossy 0-RTT tests cover it.
  bool handshake_first = !server_ && state_ == State::kHandshaking;
  bool more = false;
  int rv;
  {
    PacketBatch batch(conn_, engine_, ps, ts);
    rv = app_->SendPackets(&batch, kMaxPacketsPerFlush, handshake_first, &more);
  }
  if (!waiting_writers_.empty()) ReleaseWriters();
  if (rv == 0 && more) {
    // A full burst: the pacer starts counting now, before the rest goes out.
    ngtcp2_conn_update_pkt_tx_time(conn_, ts);
    MarkDirty();
  }
  return rv;
}

void Connection::ScheduleTimer() {
  if (!timer_ || !conn_) return;
  uint64_t expiry = ngtcp2_conn_get_expiry(conn_);
  if (close_requested_) expiry = std::min(expiry, close_deadline_);
  if (MayTryNextAddress()) expiry = std::min(expiry, AttemptDeadline());
  if (tls_release_at_ != 0) expiry = std::min(expiry, tls_release_at_);
  uint64_t now = Now();
  uint64_t delay_ms = expiry <= now ? 0 : (expiry - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
  uv_timer_start(timer_, OnTimer, delay_ms, 0);
}

// qlog is a debugging aid: written synchronously, one file per connection.
void Connection::WriteQlog(void* user, uint32_t flags, const void* data, size_t length) {
  auto* self = static_cast<Connection*>(user);
  if (!self->qlog_) return;
  fwrite(data, 1, length, self->qlog_);
  if (flags & NGTCP2_QLOG_WRITE_FLAG_FIN) {
    fclose(self->qlog_);
    self->qlog_ = nullptr;
  }
}

void Connection::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<Connection*>(timer->data);
  if (self->state_ == State::kFinished || self->state_ == State::kTerminated) return;
  if (self->MayTryNextAddress() && Now() >= self->AttemptDeadline()) {
    self->TryNextAddress();
    return;
  }
  uint64_t now = Now();
  self->MaybeReleaseTls(now);
  int rv = ngtcp2_conn_handle_expiry(self->conn_, now);
  if (rv != 0) {
    self->HandleLibraryError(rv);
    return;
  }
  self->SyncPath();
  self->MarkDirty();
}

void Connection::MaybeReleaseTls(uint64_t now) {
  if (tls_release_at_ == 0 || !tls_) return;
  if (now < tls_release_at_ && (server_ || tls_->tickets_received() == 0)) return;
  tls_release_at_ = 0;
  tls_->ReleaseHandshakeState();
  ngtcp2_conn_set_tls_native_handle(conn_, nullptr);
}

void Connection::Terminate() {
  if (state_ == State::kTerminated) return;
  state_ = State::kTerminated;
  if (engine_) {
    for (const auto& cid : cids_) engine_->RemoveConnectionId(cid);
    engine_->Forget(this);
    engine_ = nullptr;
  }
  if (timer_) {
    uv_timer_stop(timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
    timer_ = nullptr;
  }
  streams_.TakeAll();
  KeepFinalState();
  tls_.reset();
  if (conn_) {
    ngtcp2_conn_del(conn_);
    conn_ = nullptr;
  }
  if (qlog_) {
    fclose(qlog_);
    qlog_ = nullptr;
  }
  owner_.Reset();
}

// ---- events to JS --------------------------------------------------------------------------

void Connection::Queue(events::Event event) {
  events_.push_back(std::move(event));
  if (engine_) engine_->MarkHasEvents(this);
}

void Connection::LogKeys(bool on) {
  want_keylog_ = on;
  if (!tls_) return;
  if (on) {
    tls_->set_keylog_handler([this](std::string line) { Queue(events::Keylog{std::move(line)}); });
  } else {
    tls_->set_keylog_handler(nullptr);
  }
}

}  // namespace quicket
