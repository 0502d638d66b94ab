// Application: what runs on top of QUIC on one connection, chosen by the ALPN: raw streams
// (RawApplication) or HTTP/3 (Http3Application). It owns the send loop, deciding which stream
// data goes into each packet, and hears what happens to streams; the Connection owns the
// transport (ngtcp2_conn, timers, the close state machine) and the packets' way to the socket.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <cstdint>

#include "../quic/connection_events.h"
#include "../streams/stream_table.h"

namespace quicket {

class Application {
 public:
  // What an application needs from its connection.
  class Host {
   public:
    virtual ~Host() = default;
    virtual ngtcp2_conn* quic() = 0;
    virtual StreamTable& streams() = 0;
    virtual void Queue(events::Event event) = 0;
    // Announces a peer's stream to JS once (with whether its first bytes were 0-RTT).
    virtual void Announce(Stream* stream, bool early) = 0;
    // Queues stream data for JS, coalescing consecutive data of one stream.
    virtual void QueueData(int64_t stream_id, const uint8_t* data, size_t length, bool fin) = 0;
    // Packets are waiting: flush on this loop turn.
    virtual void MarkDirty() = 0;
    // QUIC flow-control credit for bytes consumed without reaching JS (HTTP/3 framing).
    virtual void Credit(int64_t stream_id, size_t bytes) = 0;
    // The application protocol failed: close the connection with this application error code.
    virtual void FailApplication(uint64_t code) = 0;
  };

  // Stream data for the next packet: the stream (-1: none) and up to 16 vectors of it.
  struct Chunk {
    int64_t stream_id = -1;
    Stream* stream = nullptr;  // raw streams only
    ngtcp2_vec vecs[16];
    size_t count = 0;
    bool fin = false;
  };

  // Where packets go: the connection's packet writer.
  class PacketSink {
   public:
    virtual ~PacketSink() = default;
    // ngtcp2_conn_writev_stream of `chunk` into the next packet; returns its result and sets
    // *accepted to the stream bytes it took (-1: none).
    virtual ngtcp2_ssize Write(const Chunk& chunk, uint32_t flags, ngtcp2_ssize* accepted) = 0;
    // The packet just written (`length` bytes, > 0) is complete.
    virtual void Sent(size_t length) = 0;
  };

  explicit Application(Host* host) : host_(host) {}
  virtual ~Application() = default;
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  virtual bool http3() const = 0;

  // Writes up to `max_packets` packets; when `handshake_first`, a first one without stream data.
  // Returns 0 or a fatal ngtcp2/nghttp3 error; *more: it stopped at the limit.
  int SendPackets(PacketSink* sink, size_t max_packets, bool handshake_first, bool* more);

  // From ngtcp2's callbacks; each returns 0 or an ngtcp2 error. `stream` may be null.
  virtual int ReceiveStreamData(Stream* stream, int64_t stream_id, const uint8_t* data, size_t length, bool fin,
                                bool early) = 0;
  virtual int AckedStreamData(Stream* stream, int64_t stream_id, uint64_t offset, uint64_t length) = 0;
  // The stream is gone from ngtcp2: *code is its application error code (0: clean, also after
  // the application's own translation of "no error").
  virtual int StreamClosed(int64_t stream_id, bool code_set, uint64_t* code) = 0;
  // The peer reset the stream or stopped reading it.
  virtual void StreamReset(int64_t stream_id) {}
  virtual void ExtendMaxStreamData(Stream* stream, int64_t stream_id) = 0;
  virtual void ExtendMaxRemoteStreamsBidi(uint64_t max_streams) {}
  // JS wrote to a stream (or ended it).
  virtual void Resume(Stream* stream) = 0;
  // A stream the application keeps for itself (HTTP/3's control and QPACK streams): JS never
  // hears of it, and a graceful close does not wait for it.
  virtual bool IsOwnStream(int64_t stream_id) const { return false; }
  // A graceful close begins (HTTP/3: GOAWAY).
  virtual void Shutdown() {}

 protected:
  // The next stream data to send (none: chunk->stream_id stays -1); 0 or a fatal error.
  virtual int NextChunk(Chunk* chunk) = 0;
  // ngtcp2 took `accepted` bytes of the chunk (its FIN too when they were all of it); `more`:
  // the packet has room for more (NGTCP2_ERR_WRITE_MORE).
  virtual int Commit(const Chunk& chunk, size_t accepted, bool more) = 0;
  // The chunk's stream is flow-control blocked / its write side is shut.
  virtual void Blocked(const Chunk& chunk) = 0;
  virtual void WriteShut(const Chunk& chunk) = 0;

  Host* host_;
};

}  // namespace quicket
