#include "connection.h"

#include <algorithm>
#include <cstring>

#include "../engine.h"
#include "../application/http3_application.h"
#include "../application/raw_application.h"
#include "../tls/crypto.h"

namespace quicket {

namespace {
constexpr size_t kCidLength = 18;
constexpr size_t kMaxPacketsPerFlush = 128;
constexpr size_t kMaxPacketSize = 1500;
// JS gets a 'drain' for a stream once its unacknowledged bytes fall below this.
constexpr uint64_t kDrainThreshold = 1024 * 1024;

size_t AddressLength(const sockaddr* address) {
  return address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

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
  }
  callbacks->recv_crypto_data = ReceiveCryptoData;
  callbacks->encrypt = ngtcp2_crypto_encrypt_cb;
  callbacks->decrypt = ngtcp2_crypto_decrypt_cb;
  callbacks->hp_mask = ngtcp2_crypto_hp_mask_cb;
  callbacks->update_key = ngtcp2_crypto_update_key_cb;
  callbacks->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  callbacks->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  callbacks->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
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
  // Let ngtcp2 grow flow-control windows for fast readers, up to these caps.
  settings->max_stream_window = 6 * 1024 * 1024;
  settings->max_window = 16 * 1024 * 1024;
}

void Connection::FillTransportParams(ngtcp2_transport_params* params, const TransportOptions& transport) {
  ngtcp2_transport_params_default(params);
  params->initial_max_stream_data_bidi_local = transport.stream_window;
  params->initial_max_stream_data_bidi_remote = transport.stream_window;
  params->initial_max_stream_data_uni = transport.stream_window;
  params->initial_max_data = transport.connection_window;
  params->initial_max_streams_bidi = transport.max_streams_bidi;
  params->initial_max_streams_uni = transport.max_streams_uni;
  params->max_idle_timeout = transport.idle_timeout_ms * NGTCP2_MILLISECONDS;
}

std::string Connection::InitClient(Engine* engine, std::shared_ptr<TlsContext> ssl, const sockaddr* local,
                                   const sockaddr* remote, const TransportOptions& transport,
                                   const ClientOptions& client) {
  InitCommon(engine, std::move(ssl), local, remote);
  transport_ = transport;
  client_ = client;
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
  ngtcp2_transport_params params;
  FillTransportParams(&params, transport_);
  int rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path_, NGTCP2_PROTO_VER_V1, &callbacks,
                                  &settings, &params, nullptr, this);
  if (rv != 0) return ngtcp2_strerror(rv);
  engine_->AddConnectionId(scid, this);
  cids_.push_back(scid);

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
                                   const TransportOptions& transport, bool want_keylog) {
  InitCommon(engine, std::move(ssl), local, remote);
  server_ = true;
  tls_ = std::make_unique<TlsSession>(ssl_, &conn_ref_);
  ngtcp2_cid scid;
  if (!RandomCid(&scid, kCidLength)) return "no randomness for connection IDs";
  ngtcp2_callbacks callbacks;
  FillCallbacks(&callbacks, true);
  ngtcp2_settings settings;
  FillSettings(&settings, transport, initial.dcid);
  ngtcp2_transport_params params;
  FillTransportParams(&params, transport);
  params.original_dcid = initial.dcid;
  params.original_dcid_present = 1;
  params.stateless_reset_token_present = 1;
  ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token, engine->reset_secret(), 32, &scid);
  int rv = ngtcp2_conn_server_new(&conn_, &initial.scid, &scid, &path_, initial.version, &callbacks,
                                  &settings, &params, nullptr, this);
  if (rv != 0) return ngtcp2_strerror(rv);
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
      ngtcp2_crypto_generate_stateless_reset_token(token, self->engine_->reset_secret(), 32, cid) != 0) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  self->engine_->AddConnectionId(*cid, self);
  self->cids_.push_back(*cid);
  return 0;
}

int Connection::RemoveConnectionId(ngtcp2_conn*, const ngtcp2_cid* cid, void* user) {
  auto* self = static_cast<Connection*>(user);
  self->engine_->RemoveConnectionId(*cid);
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

void Connection::OnHandshakeCompleted() {
  state_ = State::kEstablished;
  for (auto& [id, stream] : streams_) stream->send.Retain(false);
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
}

void Connection::ReplayRejectedEarlyData() {
  early_rejected_ = true;
  // ngtcp2 forgets every stream it had; keep ours (their bytes were never acknowledged).
  StreamTable::Map early_streams = streams_.TakeAll();
  ngtcp2_conn_tls_early_data_rejected(conn_);
  // HTTP/3 state (control streams, QPACK) went with the streams: start afresh.
  bool http3 = app_->http3();
  app_ = std::make_unique<RawApplication>(AsHost());
  Reopen(std::move(early_streams), http3);
  Queue(events::EarlyDataRejected{});
}

// Streams whose bytes never reached the peer's application reopen here with the same IDs (opened
// in the same order) and send again from their first byte; HTTP/3 requests are resubmitted.
void Connection::Reopen(StreamTable::Map streams, bool http3) {
  if (http3 && !StartHttp3()) {
    HandleLibraryError(NGTCP2_ERR_INTERNAL);
    return;
  }
  for (auto& [id, stream] : streams) {
    if (http3 && (id & 0x2)) continue;  // the old control and QPACK streams
    int64_t reopened = -1;
    bool bidi = (id & 0x2) == 0;
    int rv = bidi ? ngtcp2_conn_open_bidi_stream(conn_, &reopened, nullptr)
                  : ngtcp2_conn_open_uni_stream(conn_, &reopened, nullptr);
    if (rv != 0 || reopened != id) {
      // The server now allows fewer streams than the ticket promised: this one cannot be replayed.
      Queue(events::StreamReset{id, NGTCP2_STREAM_LIMIT_ERROR, false});
      Queue(events::StreamClose{id, NGTCP2_STREAM_LIMIT_ERROR});
      continue;
    }
    stream->send.Rewind();
    stream->fin_sent = false;
    stream->blocked = false;
    stream->queued = false;
    Stream* reopened_stream = streams_.Add(std::move(stream));
    if (Http3Application* h3 = http3_application()) {
      h3->SubmitRequest(id, reopened_stream->request_headers);
    } else {
      app_->Resume(reopened_stream);
    }
  }
  MarkDirty();
}

void Connection::OnTicket(std::string session_data, uint32_t lifetime, bool early_data) {
  uint8_t params[256];
  ngtcp2_ssize length = ngtcp2_conn_encode_0rtt_transport_params(conn_, params, sizeof(params));
  events::Ticket event{std::move(session_data), "", lifetime, early_data};
  if (length > 0) event.transport_params.assign(reinterpret_cast<char*>(params), length);
  Queue(std::move(event));
}

int Connection::StreamOpened(ngtcp2_conn*, int64_t stream_id, void* user) {
  auto* self = static_cast<Connection*>(user);
  auto stream = std::make_unique<Stream>();
  stream->id = stream_id;
  self->streams_.Add(std::move(stream));
  return 0;
}

void Connection::Announce(Stream* stream, bool early) {
  if (stream->local || stream->announced) return;
  stream->announced = true;
  stream->early = early;
  Queue(events::StreamOpen{stream->id, early});
}

int Connection::ReceiveStreamData(ngtcp2_conn*, uint32_t flags, int64_t stream_id, uint64_t,
                                  const uint8_t* data, size_t datalen, void* user, void*) {
  auto* self = static_cast<Connection*>(user);
  Stream* stream = self->streams_.Find(stream_id);
  if (!stream) return 0;
  bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
  bool early = (flags & NGTCP2_STREAM_DATA_FLAG_0RTT) != 0;
  if (self->http3_wanted_) self->StartHttp3();
  return self->app_->ReceiveStreamData(stream, stream_id, data, datalen, fin, early);
}

// Consecutive data for one stream is coalesced into one JS call per loop turn.
void Connection::QueueData(int64_t stream_id, const uint8_t* data, size_t length, bool fin) {
  auto* last = events_.empty() ? nullptr : std::get_if<events::StreamData>(&events_.back());
  if (last && last->id == stream_id && !last->fin) {
    last->bytes.append(reinterpret_cast<const char*>(data), length);
    last->fin = fin;
    return;
  }
  Queue(events::StreamData{stream_id, std::string(reinterpret_cast<const char*>(data), length), fin});
}

bool Connection::StartHttp3() {
  if (app_->http3()) return true;
  std::unique_ptr<Http3Application> h3 = Http3Application::Start(this, server_);
  if (!h3) return false;
  app_ = std::move(h3);
  return true;
}

Http3Application* Connection::http3_application() {
  return app_->http3() ? static_cast<Http3Application*>(app_.get()) : nullptr;
}

void Connection::FailApplication(uint64_t code) {
  app_failed_ = true;
  ngtcp2_ccerr_default(&close_error_);
  ngtcp2_ccerr_set_application_error(&close_error_, code, nullptr, 0);
}

void Connection::Credit(int64_t stream_id, size_t bytes) {
  if (bytes == 0) return;
  ngtcp2_conn_extend_max_stream_offset(conn_, stream_id, bytes);
  ngtcp2_conn_extend_max_offset(conn_, bytes);
}

int Connection::AckedStreamData(ngtcp2_conn*, int64_t stream_id, uint64_t offset, uint64_t datalen,
                                void* user, void*) {
  auto* self = static_cast<Connection*>(user);
  Stream* stream = self->streams_.Find(stream_id);
  if (int rv = self->app_->AckedStreamData(stream, stream_id, offset, datalen); rv != 0) return rv;
  if (stream && stream->drain_wanted && stream->send.buffered_bytes() < kDrainThreshold) {
    stream->drain_wanted = false;
    self->Queue(events::StreamDrain{stream_id});
  }
  return 0;
}

int Connection::StreamClosed(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id, uint64_t app_error_code,
                             void* user, void*) {
  auto* self = static_cast<Connection*>(user);
  uint64_t code = app_error_code;
  bool code_set = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) != 0;
  if (int rv = self->app_->StreamClosed(stream_id, code_set, &code); rv != 0) return rv;
  Stream* stream = self->streams_.Find(stream_id);
  if (!stream) return 0;
  if (!self->app_->IsOwnStream(stream_id)) {
    self->Announce(stream, false);
    self->Queue(events::StreamClose{stream_id, code});
  }
  bool remote = ngtcp2_conn_is_local_stream(conn, stream_id) == 0;
  self->streams_.Erase(stream_id);
  // A closed peer stream frees a slot: let the peer open another.
  if (remote) {
    if (stream_id & 0x2) {
      ngtcp2_conn_extend_max_streams_uni(conn, 1);
    } else {
      ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    }
  }
  return 0;
}

int Connection::StreamReset(ngtcp2_conn*, int64_t stream_id, uint64_t, uint64_t app_error_code, void* user,
                            void*) {
  auto* self = static_cast<Connection*>(user);
  self->app_->StreamReset(stream_id);
  if (Stream* stream = self->streams_.Find(stream_id)) self->Announce(stream, false);
  self->Queue(events::StreamReset{stream_id, app_error_code, false});
  return 0;
}

int Connection::StreamStopSending(ngtcp2_conn*, int64_t stream_id, uint64_t app_error_code, void* user,
                                  void*) {
  auto* self = static_cast<Connection*>(user);
  self->app_->StreamReset(stream_id);
  if (Stream* stream = self->streams_.Find(stream_id)) self->Announce(stream, false);
  // ngtcp2 answers STOP_SENDING with RESET_STREAM itself; JS learns the write side is gone.
  self->Queue(events::StreamReset{stream_id, app_error_code, true});
  return 0;
}

int Connection::ExtendMaxLocalStreams(ngtcp2_conn*, uint64_t, void* user) {
  auto* self = static_cast<Connection*>(user);
  if (!self->streams_available_queued_) {
    self->streams_available_queued_ = true;
    self->Queue(events::StreamsAvailable{});
  }
  return 0;
}

int Connection::ExtendMaxRemoteStreamsBidi(ngtcp2_conn*, uint64_t max_streams, void* user) {
  auto* self = static_cast<Connection*>(user);
  self->app_->ExtendMaxRemoteStreamsBidi(max_streams);
  return 0;
}

int Connection::ExtendMaxStreamData(ngtcp2_conn*, int64_t stream_id, uint64_t, void* user, void*) {
  auto* self = static_cast<Connection*>(user);
  self->app_->ExtendMaxStreamData(self->streams_.Find(stream_id), stream_id);
  return 0;
}

// ---- packets, timers ---------------------------------------------------------------------

void Connection::Receive(const uint8_t* data, size_t length, const sockaddr* local, const sockaddr* remote) {
  if (state_ == State::kFinished || state_ == State::kTerminated) return;
  ngtcp2_path path{{const_cast<sockaddr*>(local), static_cast<ngtcp2_socklen>(AddressLength(local))},
                   {const_cast<sockaddr*>(remote), static_cast<ngtcp2_socklen>(AddressLength(remote))},
                   nullptr};
  ngtcp2_pkt_info info{};
  int rv = ngtcp2_conn_read_pkt(conn_, &path, &info, data, length, Now());
  if (rv != 0) {
    HandleLibraryError(rv);
    return;
  }
  MarkDirty();
}

void Connection::MarkDirty() {
  if (engine_ && state_ != State::kFinished && state_ != State::kTerminated) engine_->MarkDirty(this);
}

// A graceful close may send CONNECTION_CLOSE once every stream has finished on its own and the
// peer has acknowledged every packet that carried something: stream data and FINs, and HTTP/3's
// HEADERS and GOAWAY (which live in nghttp3, not in our buffers). Or once its deadline passed.
bool Connection::GracefulCloseDone(uint64_t now) const {
  if (now >= close_deadline_) return true;
  for (const auto& [id, stream] : streams_) {
    if (app_->IsOwnStream(id)) continue;  // HTTP/3's control and QPACK streams live as long as it
    return false;
  }
  ngtcp2_conn_info info;
  ngtcp2_conn_get_conn_info(conn_, &info);
  return info.bytes_in_flight == 0;
}

void Connection::Flush() {
  if (state_ == State::kFinished || state_ == State::kTerminated || !conn_) return;
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  uint64_t ts = Now();
  int rv = WritePackets(&ps, ts);
  if (rv != 0) {
    HandleLibraryError(rv);
    return;
  }
  ngtcp2_conn_update_pkt_tx_time(conn_, ts);
  if (close_requested_ && state_ == State::kEstablished && GracefulCloseDone(ts)) {
    SendConnectionClose(close_error_);
    events::Close info;
    info.quic_code = close_error_.error_code;
    info.reason = close_reason_;
    Finish(std::move(info));
    return;
  }
  ScheduleTimer();
}

namespace {
// Packets are written back to back into the engine's send buffer and leave in GSO batches:
// equal-sized packets, the last of a batch possibly shorter.
class PacketBatch : public Application::PacketSink {
 public:
  PacketBatch(ngtcp2_conn* conn, Engine* engine, ngtcp2_path_storage* ps, uint64_t ts)
      : conn_(conn), engine_(engine), ps_(ps), ts_(ts), batch_(engine->send_buffer()),
        packet_size_(ngtcp2_conn_get_max_tx_udp_payload_size(conn)) {}
  ~PacketBatch() override { Send(); }

  ngtcp2_ssize Write(const Application::Chunk& chunk, uint32_t flags, ngtcp2_ssize* accepted) override {
    ngtcp2_pkt_info info{};
    size_t max_size = std::min(packet_size_, Engine::kSendBufferSize - batched_);
    return ngtcp2_conn_writev_stream(conn_, &ps_->path, &info, batch_ + batched_, max_size, accepted, flags,
                                     chunk.stream_id, chunk.vecs, chunk.count, ts_);
  }

  void Sent(size_t n) override {
    uint8_t* packet = batch_ + batched_;
    if (segment_ != 0 && n > segment_) {
      // Only the last packet of a batch may differ: this one starts the next batch.
      engine_->SendBatch(batch_, batched_, segment_, ps_->path.remote.addr);
      memmove(batch_, packet, n);
      batched_ = 0;
      segment_ = 0;
    }
    if (segment_ == 0) segment_ = n;
    batched_ += n;
    if (n < segment_ || Engine::kSendBufferSize - batched_ < packet_size_) Send();
  }

 private:
  void Send() {
    if (batched_ > 0) engine_->SendBatch(batch_, batched_, segment_, ps_->path.remote.addr);
    batched_ = 0;
    segment_ = 0;
  }

  ngtcp2_conn* conn_;
  Engine* engine_;
  ngtcp2_path_storage* ps_;
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
  // A client still handshaking first writes handshake packets alone: ngtcp2 1.11 otherwise
  // coalesced a retransmitted Initial with 0-RTT data into a datagram under 1200 bytes, which
  // servers must drop (RFC 9000 §14.1), so a lost first flight never recovered.
  bool handshake_first = !server_ && state_ == State::kHandshaking;
  bool more = false;
  int rv;
  {
    PacketBatch batch(conn_, engine_, ps, ts);
    rv = app_->SendPackets(&batch, kMaxPacketsPerFlush, handshake_first, &more);
  }
  if (rv == 0 && more) MarkDirty();  // more may be waiting: continue next turn
  return rv;
}

void Connection::ScheduleTimer() {
  if (!timer_ || !conn_) return;
  uint64_t expiry = ngtcp2_conn_get_expiry(conn_);
  if (close_requested_) expiry = std::min(expiry, close_deadline_);
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
  int rv = ngtcp2_conn_handle_expiry(self->conn_, Now());
  if (rv != 0) {
    self->HandleLibraryError(rv);
    return;
  }
  self->MarkDirty();
}

// ---- closing -------------------------------------------------------------------------------

void Connection::SendConnectionClose(const ngtcp2_ccerr& error) {
  if (!conn_ || ngtcp2_conn_in_closing_period(conn_) || ngtcp2_conn_in_draining_period(conn_)) return;
  uint8_t packet[kMaxPacketSize];
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info info{};
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &info, packet, sizeof(packet), &error, Now());
  if (n > 0 && engine_) engine_->SendBatch(packet, n, n, ps.path.remote.addr);
}

// A resumption attempt that fails during the handshake is retried once as a full handshake, on the
// same Connection and Streams: forged or damaged session data (its secret no longer matches the
// server's ticket, the remembered limits are not the server's) must cost a round trip, not the
// connection. Timeouts and certificate failures are not the ticket's fault and are reported.
bool Connection::RetryWithoutTicket(int error) {
  if (server_ || retried_ || state_ != State::kHandshaking || client_.session_data.empty() || !engine_) return false;
  if (error == NGTCP2_ERR_IDLE_CLOSE || error == NGTCP2_ERR_HANDSHAKE_TIMEOUT || error == NGTCP2_ERR_DROP_CONN) {
    return false;
  }
  std::string code, message;
  if (tls_->VerificationFailure(&code, &message)) return false;
  if (error == NGTCP2_ERR_DRAINING) {
    // The server refused the handshake: a TLS alert, or a protocol or transport-parameter error.
    const ngtcp2_ccerr* peer = ngtcp2_conn_get_ccerr(conn_);
    bool refused = peer->type == NGTCP2_CCERR_TYPE_TRANSPORT &&
                   ((peer->error_code & 0xff00) == NGTCP2_CRYPTO_ERROR || peer->error_code == NGTCP2_PROTOCOL_VIOLATION ||
                    peer->error_code == NGTCP2_TRANSPORT_PARAMETER_ERROR);
    if (!refused) return false;
  } else {
    ngtcp2_ccerr ccerr;
    ngtcp2_ccerr_default(&ccerr);
    ngtcp2_ccerr_set_liberr(&ccerr, error, nullptr, 0);
    SendConnectionClose(ccerr);
  }
  retried_ = true;
  // Abandon the attempt: its routes, its ngtcp2 and TLS state. Its streams wait for the new
  // handshake (without remembered limits nothing can be sent before it).
  for (const auto& cid : cids_) engine_->RemoveConnectionId(cid);
  cids_.clear();
  for (auto& [id, stream] : streams_.TakeAll()) {
    if (app_->IsOwnStream(id)) continue;  // HTTP/3's own streams start afresh with it
    stream->send.Restart();  // 0-RTT bytes were retained, acknowledged or not
    stream->send.Retain(false);  // no second retry
    retried_streams_.emplace(id, std::move(stream));
  }
  retried_http3_ = app_->http3();
  app_ = std::make_unique<RawApplication>(AsHost());
  tls_.reset();
  ngtcp2_conn_del(conn_);
  conn_ = nullptr;
  if (qlog_) {
    fclose(qlog_);
    qlog_ = nullptr;
  }
  early_attempted_ = false;
  client_.session_data.clear();
  client_.transport_params.clear();
  if (!StartClient(client_).empty()) return false;
  Queue(events::TicketRejected{"refused"});
  return true;
}

void Connection::HandleLibraryError(int error) {
  if (RetryWithoutTicket(error)) return;
  events::Close info;
  info.application = false;
  switch (error) {
    case NGTCP2_ERR_DRAINING: {
      // The peer closed the connection.
      const ngtcp2_ccerr* peer = ngtcp2_conn_get_ccerr(conn_);
      info.remote = true;
      info.quic_code = peer->error_code;
      info.application = peer->type == NGTCP2_CCERR_TYPE_APPLICATION;
      info.reason.assign(reinterpret_cast<const char*>(peer->reason), peer->reasonlen);
      if (!info.application && peer->error_code != NGTCP2_NO_ERROR) {
        bool tls_alert = (peer->error_code & 0xff00) == NGTCP2_CRYPTO_ERROR;
        // 120 is TLS's no_application_protocol: the peer shares none of our ALPN protocols.
        info.error_code = !tls_alert                                     ? "ERR_QUIC_TRANSPORT_ERROR"
                          : peer->error_code == (NGTCP2_CRYPTO_ERROR | 120) ? "ERR_QUIC_ALPN_MISMATCH"
                                                                          : "ERR_QUIC_TLS_ALERT";
        info.error_message = "peer closed the connection with QUIC error " + std::to_string(peer->error_code) +
                             (info.reason.empty() ? "" : ": " + info.reason);
      }
      break;
    }
    case NGTCP2_ERR_IDLE_CLOSE:
      // Silent (nothing is sent), but say why, so it is not mistaken for a clean close.
      info.reason = "idle timeout";
      if (state_ == State::kHandshaking) {
        info.error_code = "ERR_QUIC_HANDSHAKE_TIMEOUT";
        info.error_message = "the handshake did not complete before the idle timeout";
      }
      break;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
      info.error_code = "ERR_QUIC_HANDSHAKE_TIMEOUT";
      info.error_message = "the handshake did not complete in time";
      break;
    case NGTCP2_ERR_DROP_CONN:
      info.error_code = "ERR_QUIC_CONNECTION_DROPPED";
      info.error_message = "connection dropped";
      break;
    case NGTCP2_ERR_CRYPTO: {
      ngtcp2_ccerr ccerr;
      ngtcp2_ccerr_default(&ccerr);
      uint8_t alert = ngtcp2_conn_get_tls_alert(conn_);
      ngtcp2_ccerr_set_tls_alert(&ccerr, alert, nullptr, 0);
      SendConnectionClose(ccerr);
      info.quic_code = ccerr.error_code;
      if (server_ || !tls_->VerificationFailure(&info.error_code, &info.error_message)) {
        info.error_code = alert == 120 ? "ERR_QUIC_ALPN_MISMATCH" : "ERR_QUIC_TLS_HANDSHAKE";
        info.error_message = "TLS handshake failed (alert " + std::to_string(alert) + ")";
      }
      break;
    }
    default: {
      ngtcp2_ccerr ccerr;
      ngtcp2_ccerr_default(&ccerr);
      if (app_failed_) {
        ccerr = close_error_;
        info.application = true;
        info.error_code = "ERR_QUIC_HTTP3";
        info.error_message = "HTTP/3 protocol error " + std::to_string(ccerr.error_code);
      } else {
        ngtcp2_ccerr_set_liberr(&ccerr, error, nullptr, 0);
        info.error_code = "ERR_QUIC_PROTOCOL";
        info.error_message = std::string("QUIC protocol error: ") + ngtcp2_strerror(error);
      }
      SendConnectionClose(ccerr);
      info.quic_code = ccerr.error_code;
      break;
    }
  }
  Finish(std::move(info));
}

void Connection::Finish(events::Close info) {
  if (state_ == State::kFinished || state_ == State::kTerminated) return;
  state_ = State::kFinished;
  if (timer_) uv_timer_stop(timer_);
  memcpy(&info.peer, &remote_, sizeof(remote_));
  Queue(std::move(info));
}

void Connection::OnPortUnreachable() {
  if (server_ || state_ != State::kHandshaking) return;
  events::Close info;
  info.application = false;
  info.error_code = "ECONNREFUSED";
  info.system_error = UV_ECONNREFUSED;
  Finish(std::move(info));
}

void Connection::CloseForEngineShutdown() {
  if (state_ == State::kFinished || state_ == State::kTerminated) return;
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  SendConnectionClose(ccerr);
  Finish(events::Close{});
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

// ---- what the JS methods (connection_bindings.cc) ask for ----------------------------------

int Connection::OpenLocalStream(bool bidi, Stream** opened) {
  *opened = nullptr;
  int64_t id = -1;
  int rv = bidi ? ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr) : ngtcp2_conn_open_uni_stream(conn_, &id, nullptr);
  if (rv != 0) return rv;
  auto stream = std::make_unique<Stream>();
  stream->id = id;
  stream->local = true;
  stream->announced = true;
  stream->early = state_ == State::kHandshaking;
  // A resumption attempt's early bytes must survive a retry (RetryWithoutTicket).
  if (stream->early && !client_.session_data.empty()) stream->send.Retain(true);
  *opened = streams_.Add(std::move(stream));
  return 0;
}

uint64_t Connection::WriteStream(Stream* stream, const uint8_t* data, size_t length, bool fin) {
  if (length > 0) stream->send.Append(data, length);
  if (fin) stream->fin_requested = true;
  app_->Resume(stream);
  uint64_t buffered = stream->send.buffered_bytes();
  stream->drain_wanted = buffered >= kDrainThreshold;
  return stream->drain_wanted ? buffered : 0;
}

void Connection::ResetStream(int64_t id, uint64_t code) {
  if (!streams_.Find(id)) return;
  ngtcp2_conn_shutdown_stream(conn_, 0, id, code);
  MarkDirty();
}

void Connection::Consume(int64_t id, uint64_t bytes) {
  Credit(id, bytes);
  MarkDirty();
}

void Connection::CloseGracefully(uint64_t code, std::string reason, uint64_t timeout_ms) {
  if (close_requested_) return;
  close_reason_ = std::move(reason);
  close_deadline_ = Now() + timeout_ms * NGTCP2_MILLISECONDS;
  ngtcp2_ccerr_default(&close_error_);
  ngtcp2_ccerr_set_application_error(&close_error_, code, reinterpret_cast<const uint8_t*>(close_reason_.data()),
                                     close_reason_.size());
  close_requested_ = true;
  if (app_->http3() && state_ == State::kEstablished) {
    app_->Shutdown();  // GOAWAY first
    ngtcp2_ccerr_set_application_error(&close_error_, code == 0 ? NGHTTP3_H3_NO_ERROR : code,
                                       reinterpret_cast<const uint8_t*>(close_reason_.data()), close_reason_.size());
  }
  if (state_ == State::kHandshaking) {
    // Nothing can be delivered gracefully before the handshake: close now.
    SendConnectionClose(close_error_);
    events::Close closed;
    closed.quic_code = code;
    closed.reason = close_reason_;
    Finish(std::move(closed));
    return;
  }
  MarkDirty();
}

void Connection::CloseNow(uint64_t code) {
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  if (code != 0) ngtcp2_ccerr_set_application_error(&ccerr, code, nullptr, 0);
  SendConnectionClose(ccerr);
  events::Close closed;
  closed.quic_code = code;
  Finish(std::move(closed));
}

void Connection::WantTickets(bool on) {
  want_tickets_ = on;
  if (!tls_) return;
  if (on) {
    tls_->set_ticket_handler([this](std::string data, uint32_t lifetime, bool early_data) {
      OnTicket(std::move(data), lifetime, early_data);
    });
  } else {
    tls_->set_ticket_handler(nullptr);
  }
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

Connection::RequestStart Connection::SubmitRequest(std::vector<std::string> headers, int64_t* id, int* error) {
  if (!app_->http3()) {
    // Before the handshake a client that also offered other protocols does not know yet.
    bool undecided = !server_ && state_ == State::kHandshaking &&
                     std::find(client_.alpn.begin(), client_.alpn.end(), "h3") != client_.alpn.end();
    if (!http3_wanted_ && !undecided) return RequestStart::kUnavailable;
    // HTTP/3 starts at the handshake (or once the peer allows its streams); JS retries then.
    if (!http3_wanted_ || !StartHttp3()) return RequestStart::kLater;
  }
  Stream* stream = nullptr;
  *error = OpenLocalStream(true, &stream);
  if (*error == NGTCP2_ERR_STREAM_ID_BLOCKED) return RequestStart::kLater;
  if (*error != 0) return RequestStart::kQuicError;
  stream->request_headers = std::move(headers);
  *id = stream->id;
  *error = http3_application()->SubmitRequest(stream->id, stream->request_headers);
  return *error == 0 ? RequestStart::kStarted : RequestStart::kHttp3Error;
}

int Connection::SubmitResponse(int64_t id, const std::vector<std::string>& headers) {
  Http3Application* h3 = http3_application();
  if (!h3 || !streams_.Find(id)) return NGHTTP3_ERR_STREAM_NOT_FOUND;
  return h3->SubmitResponse(id, headers);
}

}  // namespace quicket
