#include "stream_buffer.h"

#include <utility>

namespace quicket {

namespace {
// Storage of acknowledged chunks, kept per thread for the next writes. Each large write used to
// get a fresh allocation, which malloc takes from mmap, and touching its new pages (page faults in
// the copy) was 19% of a bulk sender's CPU. Bounded: at most kMaxSpareBytes stay kept.
constexpr size_t kMinRecycled = 16 * 1024;  // smaller chunks come cheaply from malloc's bins
constexpr size_t kMaxSpareBytes = 4 * 1024 * 1024;

struct SpareChunks {
  std::vector<std::vector<uint8_t>> chunks;
  size_t bytes = 0;
};
thread_local SpareChunks spare;

// The smallest kept chunk that holds `length` bytes without wasting most of itself, or a new one.
std::vector<uint8_t> TakeChunk(size_t length) {
  size_t best = spare.chunks.size();
  for (size_t i = 0; i < spare.chunks.size(); i++) {
    size_t capacity = spare.chunks[i].capacity();
    if (capacity >= length && capacity <= 4 * length &&
        (best == spare.chunks.size() || capacity < spare.chunks[best].capacity())) {
      best = i;
    }
  }
  if (best == spare.chunks.size()) return {};
  std::vector<uint8_t> chunk = std::move(spare.chunks[best]);
  spare.chunks[best] = std::move(spare.chunks.back());
  spare.chunks.pop_back();
  spare.bytes -= chunk.capacity();
  return chunk;
}

void KeepChunk(std::vector<uint8_t>&& chunk) {
  size_t capacity = chunk.capacity();
  if (capacity < kMinRecycled || spare.bytes + capacity > kMaxSpareBytes) return;  // freed
  chunk.clear();
  spare.bytes += capacity;
  spare.chunks.push_back(std::move(chunk));
}
}  // namespace

StreamBuffer::~StreamBuffer() {
  for (auto& chunk : chunks_) KeepChunk(std::move(chunk));
}

void StreamBuffer::Append(const uint8_t* data, size_t length) {
  if (length == 0) return;
  std::vector<uint8_t> chunk = length >= kMinRecycled ? TakeChunk(length) : std::vector<uint8_t>();
  chunk.assign(data, data + length);
  chunks_.push_back(std::move(chunk));
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
    KeepChunk(std::move(chunks_.front()));
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
