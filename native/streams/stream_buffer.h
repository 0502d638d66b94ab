// StreamBuffer: the bytes written to one QUIC stream, kept until the peer acknowledges them.
// ngtcp2 does not copy stream data: it points into this buffer until the ACK arrives, and after a
// 0-RTT rejection the same bytes are sent again from the start.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <cstdint>
#include <deque>
#include <vector>

namespace quicket {

class StreamBuffer {
 public:
  StreamBuffer() = default;
  ~StreamBuffer();
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;

  void Append(const uint8_t* data, size_t length);
  // Fills up to `max` vectors with bytes not yet handed to ngtcp2; returns how many it filled.
  size_t Unsent(ngtcp2_vec* vecs, size_t max) const;
  void MarkSent(uint64_t length) { sent_ += length; }
  // ngtcp2 reports acknowledgements as a growing contiguous prefix.
  void Acknowledge(uint64_t offset, uint64_t length);
  // nghttp3 reports acknowledged body bytes as a count, in order.
  void AcknowledgeBytes(uint64_t length) { Acknowledge(acked_, length); }
  // After 0-RTT rejection nothing was received: resend everything still buffered.
  void Rewind() { sent_ = acked_; }
  // 0-RTT bytes stay buffered even once acknowledged until the handshake settles, so a resumption
  // that fails after the server acknowledged them can still send them on a new connection.
  void Retain(bool keep);
  // Back to "nothing sent" (only while every byte is retained): the stream starts over.
  void Restart();

  uint64_t unsent_bytes() const { return end_ - sent_; }
  uint64_t buffered_bytes() const { return end_ - acked_; }

 private:
  void Release();  // frees the chunks every byte of which is acknowledged

  std::deque<std::vector<uint8_t>> chunks_;
  uint64_t front_offset_ = 0;  // stream offset of chunks_.front()[0]
  uint64_t acked_ = 0;
  uint64_t sent_ = 0;
  uint64_t end_ = 0;
  bool retain_ = false;
};

}  // namespace quicket
