#include "http3_application.h"

namespace quicket {

Http3Application::Http3Application(Application::Host* host, bool server)
    : Application(host), session_(static_cast<Http3Session::Host*>(this), server) {}

std::unique_ptr<Http3Application> Http3Application::Start(Application::Host* host, bool server) {
  if (ngtcp2_conn_get_streams_uni_left(host->quic()) < 3) return nullptr;
  std::unique_ptr<Http3Application> application(new Http3Application(host, server));
  if (application->session_.Start() != 0) return nullptr;
  host->MarkDirty();
  return application;
}

int Http3Application::Fail(int error) {
  host_->FailApplication(nghttp3_err_infer_quic_app_error_code(error));
  return NGTCP2_ERR_CALLBACK_FAILURE;
}

int Http3Application::SubmitRequest(int64_t stream_id, const std::vector<std::string>& headers) {
  int rv = session_.SubmitRequest(stream_id, headers, true);
  if (rv == 0) host_->MarkDirty();
  return rv;
}

int Http3Application::SubmitResponse(int64_t stream_id, const std::vector<std::string>& headers) {
  int rv = session_.SubmitResponse(stream_id, headers, true);
  if (rv == 0) host_->MarkDirty();
  return rv;
}

int Http3Application::ReceiveStreamData(Stream* stream, int64_t stream_id, const uint8_t* data, size_t length,
                                        bool fin, bool early) {
  // Requests are bidirectional streams; the unidirectional ones belong to nghttp3.
  if (stream && !IsOwnStream(stream_id)) host_->Announce(stream, early);
  int64_t consumed = session_.Read(stream_id, data, length, fin);
  if (consumed < 0) return Fail(static_cast<int>(consumed));
  host_->Credit(stream_id, static_cast<size_t>(consumed));
  return 0;
}

// Body bytes are acknowledged through nghttp3 (Http3Session::AckedBody), framing and all.
int Http3Application::AckedStreamData(Stream*, int64_t stream_id, uint64_t, uint64_t length) {
  if (nghttp3_conn_add_ack_offset(session_.get(), stream_id, length) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

int Http3Application::StreamClosed(int64_t stream_id, bool code_set, uint64_t* code) {
  if (!code_set) *code = NGHTTP3_H3_NO_ERROR;
  int rv = nghttp3_conn_close_stream(session_.get(), stream_id, *code);
  if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) return Fail(rv);
  // A clean HTTP/3 close is H3_NO_ERROR; JS hears 0, as for a raw stream.
  if (*code == NGHTTP3_H3_NO_ERROR) *code = 0;
  return 0;
}

void Http3Application::StreamReset(int64_t stream_id) { nghttp3_conn_shutdown_stream_read(session_.get(), stream_id); }

void Http3Application::ExtendMaxStreamData(Stream*, int64_t stream_id) {
  nghttp3_conn_unblock_stream(session_.get(), stream_id);
  host_->MarkDirty();
}

void Http3Application::ExtendMaxRemoteStreamsBidi(uint64_t max_streams) {
  nghttp3_conn_set_max_client_streams_bidi(session_.get(), max_streams);
}

void Http3Application::Resume(Stream* stream) {
  session_.Resume(stream->id);
  host_->MarkDirty();
}

int Http3Application::NextChunk(Chunk* chunk) {
  if (ngtcp2_conn_get_max_data_left(host_->quic()) == 0) return 0;
  int fin = 0;
  nghttp3_ssize n = nghttp3_conn_writev_stream(session_.get(), &chunk->stream_id, &fin,
                                               reinterpret_cast<nghttp3_vec*>(chunk->vecs), 16);
  if (n < 0) return Fail(static_cast<int>(n));
  chunk->count = static_cast<size_t>(n);
  chunk->fin = fin != 0;
  return 0;
}

int Http3Application::Commit(const Chunk& chunk, size_t accepted, bool) {
  if (int rv = nghttp3_conn_add_write_offset(session_.get(), chunk.stream_id, accepted); rv != 0) return Fail(rv);
  return 0;
}

void Http3Application::Blocked(const Chunk& chunk) { nghttp3_conn_block_stream(session_.get(), chunk.stream_id); }

void Http3Application::WriteShut(const Chunk& chunk) {
  nghttp3_conn_shutdown_stream_write(session_.get(), chunk.stream_id);
}

StreamBuffer* Http3Application::Body(int64_t stream_id, bool* ended) {
  Stream* stream = host_->streams().Find(stream_id);
  if (!stream) return nullptr;
  *ended = stream->fin_requested;
  return &stream->send;
}

void Http3Application::OnHeaders(int64_t stream_id, std::vector<std::string> headers, bool trailers) {
  host_->Queue(events::Headers{stream_id, std::move(headers), trailers});
}

void Http3Application::OnBodyData(int64_t stream_id, const uint8_t* data, size_t length) {
  host_->QueueData(stream_id, data, length, false);
}

void Http3Application::OnEndStream(int64_t stream_id) { host_->QueueData(stream_id, nullptr, 0, true); }

}  // namespace quicket
