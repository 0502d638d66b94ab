#include "stream_buffer.h"

namespace quicket {

void StreamBuffer::Append(const uint8_t* data, size_t length) {
  if (length == 0) return;
  chunks_.emplace_back(data, data + length);
  end_ += length;
}

size_t StreamBuffer::Unsent(ngtcp2_vec* vecs, size_t max) const {
  size_t count = 0;
  uint64_t offset = front_offset_;
  for (const auto& chunk : chunks_) {
    if (count == max) break;
    uint64_t chunk_end = offset + chunk.size();
    if (chunk_end > sent_) {
      uint64_t skip = sent_ > offset ? sent_ - offset : 0;
      vecs[count].base = const_cast<uint8_t*>(chunk.data()) + skip;
      vecs[count].len = chunk.size() - skip;
      count++;
    }
    offset = chunk_end;
  }
  return count;
}

void StreamBuffer::Acknowledge(uint64_t offset, uint64_t length) {
  uint64_t acked_end = offset + length;
  if (acked_end <= acked_) return;
  acked_ = acked_end;
  if (sent_ < acked_) sent_ = acked_;
  if (!retain_) Release();
}

void StreamBuffer::Release() {
  while (!chunks_.empty() && front_offset_ + chunks_.front().size() <= acked_) {
    front_offset_ += chunks_.front().size();
    chunks_.pop_front();
  }
}

void StreamBuffer::Retain(bool keep) {
  retain_ = keep;
  if (!keep) Release();
}

void StreamBuffer::Restart() {
  if (front_offset_ != 0) return;
  acked_ = 0;
  sent_ = 0;
}

}  // namespace quicket
