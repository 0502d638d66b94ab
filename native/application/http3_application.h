// Http3Application: HTTP/3 over the connection's streams (ALPN h3). nghttp3 (Http3Session) frames
// requests and responses and owns the control and QPACK streams; bodies stay in the streams'
// StreamBuffers, so they survive a 0-RTT rejection (the session is rebuilt and requests resubmitted).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "application.h"
#include "http3_session.h"

namespace quicket {

class Http3Application : public Application, private Http3Session::Host {
 public:
  // Null while the peer does not allow the three unidirectional streams HTTP/3 needs yet.
  static std::unique_ptr<Http3Application> Start(Application::Host* host, bool server);

  bool http3() const override { return true; }

  // Headers as flat name/value pairs; 0 or an nghttp3 error.
  int SubmitRequest(int64_t stream_id, const std::vector<std::string>& headers);
  int SubmitResponse(int64_t stream_id, const std::vector<std::string>& headers);

  int ReceiveStreamData(Stream* stream, int64_t stream_id, const uint8_t* data, size_t length, bool fin,
                        bool early) override;
  int AckedStreamData(Stream* stream, int64_t stream_id, uint64_t offset, uint64_t length) override;
  int StreamClosed(int64_t stream_id, bool code_set, uint64_t* code) override;
  void StreamReset(int64_t stream_id) override;
  void ExtendMaxStreamData(Stream* stream, int64_t stream_id) override;
  void ExtendMaxRemoteStreamsBidi(uint64_t max_streams) override;
  void Resume(Stream* stream) override;
  bool IsOwnStream(int64_t stream_id) const override { return (stream_id & 0x2) != 0; }
  void Shutdown() override { session_.Shutdown(); }

 protected:
  int NextChunk(Chunk* chunk) override;
  int Commit(const Chunk& chunk, size_t accepted, bool more) override;
  void Blocked(const Chunk& chunk) override;
  void WriteShut(const Chunk& chunk) override;

 private:
  Http3Application(Application::Host* host, bool server);
  // nghttp3 failed with `error`: the connection closes with the matching HTTP/3 error code.
  int Fail(int error);

  // Http3Session::Host
  ngtcp2_conn* quic() override { return host_->quic(); }
  StreamBuffer* Body(int64_t stream_id, bool* ended) override;
  void OnHeaders(int64_t stream_id, std::vector<std::string> headers, bool trailers) override;
  void OnBodyData(int64_t stream_id, const uint8_t* data, size_t length) override;
  void OnEndStream(int64_t stream_id) override;
  void OnHttp3StreamClose(int64_t, uint64_t) override {}
  void Credit(int64_t stream_id, size_t bytes) override { host_->Credit(stream_id, bytes); }

  Http3Session session_;
};

}  // namespace quicket
