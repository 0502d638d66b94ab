// Http3Session: HTTP/3 (nghttp3) on top of one QUIC Connection. nghttp3 does the framing, QPACK,
// SETTINGS and GOAWAY; the Connection keeps moving bytes. Request and response bodies live in the
// Connection's per-stream StreamBuffers, so the same buffers survive a 0-RTT rejection (the session
// is then rebuilt and its requests submitted again).
#pragma once

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../streams/stream_buffer.h"

namespace quicket {

class Http3Session {
 public:
  // What the session needs from its Connection.
  class Host {
   public:
    virtual ~Host() = default;
    virtual ngtcp2_conn* quic() = 0;
    // The body buffer of a stream and whether the application has ended it; null if unknown.
    virtual StreamBuffer* Body(int64_t stream_id, bool* ended) = 0;
    virtual void OnHeaders(int64_t stream_id, std::vector<std::string> headers, bool trailers) = 0;
    virtual void OnBodyData(int64_t stream_id, const uint8_t* data, size_t length) = 0;
    virtual void OnEndStream(int64_t stream_id) = 0;
    virtual void OnHttp3StreamClose(int64_t stream_id, uint64_t code) = 0;
    // QUIC flow control credit for bytes nghttp3 consumed itself (framing, QPACK).
    virtual void Credit(int64_t stream_id, size_t bytes) = 0;
  };

  Http3Session(Host* host, bool server);
  ~Http3Session();
  Http3Session(const Http3Session&) = delete;
  Http3Session& operator=(const Http3Session&) = delete;

  // Creates the nghttp3 connection and opens the control and QPACK streams; returns 0 or an error.
  int Start();
  nghttp3_conn* get() const { return conn_; }

  // Returns the number of bytes consumed by framing (to credit now), or a negative error.
  int64_t Read(int64_t stream_id, const uint8_t* data, size_t length, bool fin);
  // Headers as flat name/value pairs.
  int SubmitRequest(int64_t stream_id, const std::vector<std::string>& headers, bool has_body);
  int SubmitResponse(int64_t stream_id, const std::vector<std::string>& headers, bool has_body);
  // More body is available on a stream whose reader said "would block".
  void Resume(int64_t stream_id);
  // Sends GOAWAY: the peer must not start new requests.
  void Shutdown();

 private:
  static nghttp3_ssize ReadBody(nghttp3_conn* conn, int64_t stream_id, nghttp3_vec* vec, size_t veccnt,
                                uint32_t* flags, void* user, void* stream_user);
  static int AckedBody(nghttp3_conn* conn, int64_t stream_id, uint64_t length, void* user, void* stream_user);
  static int StreamClose(nghttp3_conn* conn, int64_t stream_id, uint64_t code, void* user, void* stream_user);
  static int ReceiveData(nghttp3_conn* conn, int64_t stream_id, const uint8_t* data, size_t length, void* user,
                         void* stream_user);
  static int DeferredConsume(nghttp3_conn* conn, int64_t stream_id, size_t consumed, void* user, void* stream_user);
  static int BeginHeaders(nghttp3_conn* conn, int64_t stream_id, void* user, void* stream_user);
  static int ReceiveHeader(nghttp3_conn* conn, int64_t stream_id, int32_t token, nghttp3_rcbuf* name,
                           nghttp3_rcbuf* value, uint8_t flags, void* user, void* stream_user);
  static int EndHeaders(nghttp3_conn* conn, int64_t stream_id, int fin, void* user, void* stream_user);
  static int EndTrailers(nghttp3_conn* conn, int64_t stream_id, int fin, void* user, void* stream_user);
  static int EndStream(nghttp3_conn* conn, int64_t stream_id, void* user, void* stream_user);
  static int StopSending(nghttp3_conn* conn, int64_t stream_id, uint64_t code, void* user, void* stream_user);
  static int ResetStream(nghttp3_conn* conn, int64_t stream_id, uint64_t code, void* user, void* stream_user);

  int Submit(int64_t stream_id, const std::vector<std::string>& headers, bool has_body, bool request);

  Host* host_;
  bool server_;
  nghttp3_conn* conn_ = nullptr;
  std::vector<std::string> headers_;  // being received, for the stream in headers_stream_
};

}  // namespace quicket
