#include "application.h"

namespace quicket {

// One packet per iteration: stream data from NextChunk, coalesced by ngtcp2 (WRITE_MORE) until a
// packet is full; acknowledgements, retransmissions and control frames come with them.
int Application::SendPackets(PacketSink* sink, size_t max_packets, bool handshake_first, bool* more) {
  *more = false;
  for (size_t sent = 0; sent < max_packets;) {
    Chunk chunk;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    if (handshake_first) {
      flags = NGTCP2_WRITE_STREAM_FLAG_NONE;
    } else if (int rv = NextChunk(&chunk); rv != 0) {
      return rv;
    }
    if (chunk.fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    ngtcp2_ssize accepted = -1;
    ngtcp2_ssize n = sink->Write(chunk, flags, &accepted);
    if (n < 0) {
      switch (n) {
        case NGTCP2_ERR_STREAM_DATA_BLOCKED:
          Blocked(chunk);
          continue;
        case NGTCP2_ERR_STREAM_SHUT_WR:
        case NGTCP2_ERR_STREAM_NOT_FOUND:
          WriteShut(chunk);
          continue;
        case NGTCP2_ERR_WRITE_MORE:
          if (int rv = Commit(chunk, static_cast<size_t>(accepted), true); rv != 0) return rv;
          continue;
        default:
          return static_cast<int>(n);
      }
    }
    if (accepted >= 0 && chunk.stream_id >= 0) {
      if (int rv = Commit(chunk, static_cast<size_t>(accepted), false); rv != 0) return rv;
    }
    if (handshake_first) {
      handshake_first = false;
      if (n == 0) continue;  // nothing of the handshake pending: go on with stream data
    }
    if (n == 0) return 0;  // nothing more to send
    sent++;
    sink->Sent(static_cast<size_t>(n));
  }
  *more = true;  // the limit, not the end: the connection continues next turn
  return 0;
}

}  // namespace quicket
