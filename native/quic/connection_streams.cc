// Connection, its streams: ngtcp2's stream callbacks handed to the application (raw or HTTP/3),
// and the stream operations JS asks for.
#include <nghttp3/nghttp3.h>

#include <algorithm>

#include "../application/http3_application.h"
#include "connection.h"

namespace quicket {

namespace {
// A writer waits (JS gets 'drain' later) while a stream holds this much not yet sent: about one
// loop turn's packets on loopback, so each flush finds data ready. Sent bytes waiting for their
// ACK count only up to the second limit: congestion and flow control already bound them, and
// capping them at 1 MiB capped a loopback transfer's bytes in flight there, however fast the path.
constexpr uint64_t kUnsentLimit = 1024 * 1024;
// Bounds a peer that acknowledges everything but a stream's first bytes, which keeps it all.
constexpr uint64_t kBufferedLimit = 8 * 1024 * 1024;

bool WriterMustWait(const Stream& stream) {
  return stream.send.unsent_bytes() >= kUnsentLimit || stream.send.buffered_bytes() >= kBufferedLimit;
}
}  // namespace

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
  streams_opened_++;
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

namespace {
// Received data comes a packet at a time. It is gathered into chunks that never move once
// allocated (growing one string would copy every byte again at each doubling, most of a
// receiver's CPU in a bulk download): small for a short message, doubling up to 64 KiB.
constexpr size_t kFirstDataChunk = 4096;
constexpr size_t kMaxDataChunk = 64 * 1024;
}  // namespace

// Consecutive data for one stream is coalesced into few JS calls per loop turn.
void Connection::QueueData(int64_t stream_id, const uint8_t* data, size_t length, bool fin) {
  auto* last = events_.empty() ? nullptr : std::get_if<events::StreamData>(&events_.back());
  size_t chunk = kFirstDataChunk;
  if (last && last->id == stream_id && !last->fin) {
    if (last->bytes.size() + length <= last->bytes.capacity()) {
      last->bytes.append(reinterpret_cast<const char*>(data), length);
      last->fin = fin;
      return;
    }
    chunk = std::min(kMaxDataChunk, 2 * last->bytes.capacity());
  }
  events::StreamData event{stream_id, std::string(), fin};
  event.bytes.reserve(std::max(chunk, length));
  event.bytes.append(reinterpret_cast<const char*>(data), length);
  Queue(std::move(event));
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
  // A writer waiting on these bytes is released by the flush that follows (ReleaseWriters).
  return self->app_->AckedStreamData(stream, stream_id, offset, datalen);
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
  static_cast<Connection*>(user)->OnPeerAbort(stream_id, app_error_code, false);
  return 0;
}

// ngtcp2 answers STOP_SENDING with RESET_STREAM itself; JS learns the write side is gone.
int Connection::StreamStopSending(ngtcp2_conn*, int64_t stream_id, uint64_t app_error_code, void* user,
                                  void*) {
  static_cast<Connection*>(user)->OnPeerAbort(stream_id, app_error_code, true);
  return 0;
}

void Connection::OnPeerAbort(int64_t stream_id, uint64_t code, bool stop_sending) {
  app_->StreamReset(stream_id);
  if (Stream* stream = streams_.Find(stream_id)) Announce(stream, false);
  Queue(events::StreamReset{stream_id, code, stop_sending});
}

int Connection::ExtendMaxLocalStreams(ngtcp2_conn*, uint64_t, void* user) {
  auto* self = static_cast<Connection*>(user);
  self->WakePendingOpens();
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
  streams_opened_++;
  return 0;
}

uint64_t Connection::WriteStream(Stream* stream, const uint8_t* data, size_t length, bool fin) {
  if (length > 0) stream->send.Append(data, length);
  if (fin) stream->fin_requested = true;
  app_->Resume(stream);
  if (!stream->drain_wanted && WriterMustWait(*stream)) {
    stream->drain_wanted = true;
    waiting_writers_.push_back(stream->id);
  }
  return stream->drain_wanted ? stream->send.buffered_bytes() : 0;
}

// After each flush, which follows every received packet and timer: packets that went out shrank
// the unsent part, acknowledgements the rest. A stream that is gone needs no drain.
void Connection::ReleaseWriters() {
  auto released = [this](int64_t id) {
    Stream* stream = streams_.Find(id);
    if (!stream) return true;
    if (WriterMustWait(*stream)) return false;
    stream->drain_wanted = false;
    Queue(events::StreamDrain{id});
    return true;
  };
  waiting_writers_.erase(std::remove_if(waiting_writers_.begin(), waiting_writers_.end(), released),
                         waiting_writers_.end());
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

// Takes the headers (moves them into the stream) only when the request starts.
Connection::RequestStart Connection::SubmitRequest(std::vector<std::string>& headers, int64_t* id, int* error) {
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

void Connection::WakePendingOpens() {
  if (streams_.pending().empty()) return;
  pending_opens_due_ = true;
  MarkDirty();
}

// Outside ngtcp2's callbacks (from Flush): opens what the peer now allows, in the order asked;
// an open that must keep waiting keeps the ones of its kind behind it waiting too.
void Connection::OpenPendingStreams() {
  pending_opens_due_ = false;
  bool bidi_waits = false;
  bool uni_waits = false;
  auto& pending = streams_.pending();
  for (auto it = pending.begin(); it != pending.end() && state_ != State::kFinished;) {
    bool& waits = it->bidi ? bidi_waits : uni_waits;
    if (waits) {
      ++it;
      continue;
    }
    int64_t id = -1;
    int error = 0;  // JS knows the stream by -token
    if (it->request) {
      switch (SubmitRequest(it->headers, &id, &error)) {
        case RequestStart::kStarted:
          Queue(events::StreamOpened{-it->token, id});
          break;
        case RequestStart::kLater:
          waits = true;
          break;
        case RequestStart::kUnavailable:
          Queue(events::StreamOpenFailed{-it->token, "ERR_QUIC_HTTP3_UNAVAILABLE",
                                         "the handshake chose a protocol other than HTTP/3"});
          break;
        case RequestStart::kQuicError:
          Queue(events::StreamOpenFailed{-it->token, "ERR_QUIC_STREAM_OPEN", ngtcp2_strerror(error)});
          break;
        case RequestStart::kHttp3Error:
          Queue(events::StreamOpenFailed{-it->token, "ERR_QUIC_HTTP3", nghttp3_strerror(error)});
          break;
      }
    } else if (app_->http3() || http3_wanted_) {
      Queue(events::StreamOpenFailed{-it->token, "ERR_QUIC_HTTP3_CONNECTION",
                                     "the handshake chose HTTP/3: use request()"});
    } else {
      Stream* stream = nullptr;
      error = OpenLocalStream(it->bidi, &stream);
      if (error == NGTCP2_ERR_STREAM_ID_BLOCKED) {
        waits = true;
      } else if (error != 0) {
        Queue(events::StreamOpenFailed{-it->token, "ERR_QUIC_STREAM_OPEN", ngtcp2_strerror(error)});
      } else {
        Queue(events::StreamOpened{-it->token, stream->id});
      }
    }
    it = waits ? std::next(it) : pending.erase(it);
  }
}

}  // namespace quicket
