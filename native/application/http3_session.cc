#include "http3_session.h"

#include <ngtcp2/ngtcp2.h>

#include <cstring>

namespace quicket {

namespace {
std::string Text(nghttp3_rcbuf* buffer) {
  nghttp3_vec vec = nghttp3_rcbuf_get_buf(buffer);
  return std::string(reinterpret_cast<const char*>(vec.base), vec.len);
}
}  // namespace

Http3Session::Http3Session(Host* host, bool server) : host_(host), server_(server) {}

Http3Session::~Http3Session() {
  if (conn_) nghttp3_conn_del(conn_);
}

int Http3Session::Start() {
  nghttp3_callbacks callbacks{};
  callbacks.acked_stream_data = AckedBody;
  callbacks.stream_close = StreamClose;
  callbacks.recv_data = ReceiveData;
  callbacks.deferred_consume = DeferredConsume;
  callbacks.begin_headers = BeginHeaders;
  callbacks.recv_header = ReceiveHeader;
  callbacks.end_headers = EndHeaders;
  callbacks.begin_trailers = BeginHeaders;
  callbacks.recv_trailer = ReceiveHeader;
  callbacks.end_trailers = EndTrailers;
  callbacks.end_stream = EndStream;
  callbacks.stop_sending = StopSending;
  callbacks.reset_stream = ResetStream;
  nghttp3_settings settings;
  nghttp3_settings_default(&settings);
  settings.qpack_max_dtable_capacity = 4096;
  settings.qpack_blocked_streams = 100;
  int rv = server_ ? nghttp3_conn_server_new(&conn_, &callbacks, &settings, nullptr, this)
                   : nghttp3_conn_client_new(&conn_, &callbacks, &settings, nullptr, this);
  if (rv != 0) return rv;
  ngtcp2_conn* quic = host_->quic();
  if (server_) {
    const ngtcp2_transport_params* params = ngtcp2_conn_get_local_transport_params(quic);
    nghttp3_conn_set_max_client_streams_bidi(conn_, params->initial_max_streams_bidi);
  }
  int64_t control, encoder, decoder;
  if ((rv = ngtcp2_conn_open_uni_stream(quic, &control, nullptr)) != 0) return rv;
  if ((rv = nghttp3_conn_bind_control_stream(conn_, control)) != 0) return rv;
  if ((rv = ngtcp2_conn_open_uni_stream(quic, &encoder, nullptr)) != 0) return rv;
  if ((rv = ngtcp2_conn_open_uni_stream(quic, &decoder, nullptr)) != 0) return rv;
  return nghttp3_conn_bind_qpack_streams(conn_, encoder, decoder);
}

int64_t Http3Session::Read(int64_t stream_id, const uint8_t* data, size_t length, bool fin) {
  return nghttp3_conn_read_stream(conn_, stream_id, data, length, fin ? 1 : 0);
}

int Http3Session::Submit(int64_t stream_id, const std::vector<std::string>& headers, bool has_body, bool request) {
  std::vector<nghttp3_nv> nva;
  for (size_t i = 0; i + 1 < headers.size(); i += 2) {
    nva.push_back({reinterpret_cast<const uint8_t*>(headers[i].data()),
                   reinterpret_cast<const uint8_t*>(headers[i + 1].data()), headers[i].size(),
                   headers[i + 1].size(), NGHTTP3_NV_FLAG_NONE});
  }
  nghttp3_data_reader reader{ReadBody};
  const nghttp3_data_reader* body = has_body ? &reader : nullptr;
  return request ? nghttp3_conn_submit_request(conn_, stream_id, nva.data(), nva.size(), body, nullptr)
                 : nghttp3_conn_submit_response(conn_, stream_id, nva.data(), nva.size(), body);
}

int Http3Session::SubmitRequest(int64_t stream_id, const std::vector<std::string>& headers, bool has_body) {
  return Submit(stream_id, headers, has_body, true);
}

int Http3Session::SubmitResponse(int64_t stream_id, const std::vector<std::string>& headers, bool has_body) {
  return Submit(stream_id, headers, has_body, false);
}

void Http3Session::Resume(int64_t stream_id) { nghttp3_conn_resume_stream(conn_, stream_id); }

void Http3Session::Shutdown() { nghttp3_conn_shutdown(conn_); }

// nghttp3 pulls body bytes from the stream's buffer; they stay there until acknowledged.
nghttp3_ssize Http3Session::ReadBody(nghttp3_conn*, int64_t stream_id, nghttp3_vec* vec, size_t veccnt,
                                     uint32_t* flags, void* user, void*) {
  auto* self = static_cast<Http3Session*>(user);
  bool ended = false;
  StreamBuffer* body = self->host_->Body(stream_id, &ended);
  if (!body) {
    *flags |= NGHTTP3_DATA_FLAG_EOF;
    return 0;
  }
  size_t count = body->Unsent(reinterpret_cast<ngtcp2_vec*>(vec), veccnt);
  uint64_t handed = 0;
  for (size_t i = 0; i < count; i++) handed += vec[i].len;
  body->MarkSent(handed);
  if (ended && body->unsent_bytes() == 0) {
    *flags |= NGHTTP3_DATA_FLAG_EOF;
  } else if (count == 0) {
    return NGHTTP3_ERR_WOULDBLOCK;
  }
  return static_cast<nghttp3_ssize>(count);
}

int Http3Session::AckedBody(nghttp3_conn*, int64_t stream_id, uint64_t length, void* user, void*) {
  auto* self = static_cast<Http3Session*>(user);
  bool ended = false;
  if (StreamBuffer* body = self->host_->Body(stream_id, &ended)) body->AcknowledgeBytes(length);
  return 0;
}

int Http3Session::StreamClose(nghttp3_conn*, int64_t stream_id, uint64_t code, void* user, void*) {
  static_cast<Http3Session*>(user)->host_->OnHttp3StreamClose(stream_id, code);
  return 0;
}

int Http3Session::ReceiveData(nghttp3_conn*, int64_t stream_id, const uint8_t* data, size_t length, void* user,
                              void*) {
  static_cast<Http3Session*>(user)->host_->OnBodyData(stream_id, data, length);
  return 0;
}

int Http3Session::DeferredConsume(nghttp3_conn*, int64_t stream_id, size_t consumed, void* user, void*) {
  static_cast<Http3Session*>(user)->host_->Credit(stream_id, consumed);
  return 0;
}

int Http3Session::BeginHeaders(nghttp3_conn*, int64_t, void* user, void*) {
  static_cast<Http3Session*>(user)->headers_.clear();
  return 0;
}

int Http3Session::ReceiveHeader(nghttp3_conn*, int64_t, int32_t, nghttp3_rcbuf* name, nghttp3_rcbuf* value,
                                uint8_t, void* user, void*) {
  auto* self = static_cast<Http3Session*>(user);
  self->headers_.push_back(Text(name));
  self->headers_.push_back(Text(value));
  return 0;
}

int Http3Session::EndHeaders(nghttp3_conn*, int64_t stream_id, int, void* user, void*) {
  auto* self = static_cast<Http3Session*>(user);
  self->host_->OnHeaders(stream_id, std::move(self->headers_), false);
  self->headers_.clear();
  return 0;
}

int Http3Session::EndTrailers(nghttp3_conn*, int64_t stream_id, int, void* user, void*) {
  auto* self = static_cast<Http3Session*>(user);
  self->host_->OnHeaders(stream_id, std::move(self->headers_), true);
  self->headers_.clear();
  return 0;
}

int Http3Session::EndStream(nghttp3_conn*, int64_t stream_id, void* user, void*) {
  static_cast<Http3Session*>(user)->host_->OnEndStream(stream_id);
  return 0;
}

int Http3Session::StopSending(nghttp3_conn*, int64_t stream_id, uint64_t code, void* user, void*) {
  ngtcp2_conn_shutdown_stream_read(static_cast<Http3Session*>(user)->host_->quic(), 0, stream_id, code);
  return 0;
}

int Http3Session::ResetStream(nghttp3_conn*, int64_t stream_id, uint64_t code, void* user, void*) {
  ngtcp2_conn_shutdown_stream_write(static_cast<Http3Session*>(user)->host_->quic(), 0, stream_id, code);
  return 0;
}

}  // namespace quicket
