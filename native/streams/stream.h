// Stream: one QUIC stream's native state. Its bytes live in `send` until the peer acknowledges
// them (so a 0-RTT rejection or a retried handshake can send them again); JS holds the matching
// node:stream Duplex (lib/stream.ts), which reaches this through the Connection by stream ID.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stream_buffer.h"

namespace quicket {

struct Stream {
  int64_t id = -1;
  StreamBuffer send;
  bool local = false;
  bool early = false;         // opened (client) or first received (server) as 0-RTT
  bool announced = false;     // remote stream: JS has been told it exists
  bool fin_requested = false;
  bool fin_sent = false;
  bool blocked = false;       // waiting for the peer's MAX_STREAM_DATA
  bool queued = false;        // in the table's send queue
  bool drain_wanted = false;  // JS holds a write callback until the buffer drains
  std::vector<std::string> request_headers;  // HTTP/3 client: resubmitted after 0-RTT rejection

  // Raw streams: bytes or a FIN still to hand to ngtcp2.
  bool has_unsent() const { return send.unsent_bytes() > 0 || (fin_requested && !fin_sent); }
};

}  // namespace quicket
