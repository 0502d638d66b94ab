// RawApplication: QUIC streams as they are (any ALPN but h3). Each stream's bytes come from its
// own StreamBuffer, round-robin across the streams with something to send.
#pragma once

#include "application.h"

namespace quicket {

class RawApplication : public Application {
 public:
  using Application::Application;
  bool http3() const override { return false; }

  int ReceiveStreamData(Stream* stream, int64_t stream_id, const uint8_t* data, size_t length, bool fin,
                        bool early) override;
  int AckedStreamData(Stream* stream, int64_t stream_id, uint64_t offset, uint64_t length) override;
  int StreamClosed(int64_t stream_id, bool code_set, uint64_t* code) override;
  void ExtendMaxStreamData(Stream* stream, int64_t stream_id) override;
  void Resume(Stream* stream) override;

 protected:
  int NextChunk(Chunk* chunk) override;
  int Commit(const Chunk& chunk, size_t accepted, bool more) override;
  void Blocked(const Chunk& chunk) override;
  void WriteShut(const Chunk& chunk) override;
};

}  // namespace quicket
