// StreamTable: a connection's streams by ID, and the round-robin queue of raw streams with
// something to send (so many streams share the packets fairly).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>

#include "stream.h"

namespace quicket {

class StreamTable {
 public:
  using Map = std::map<int64_t, std::unique_ptr<Stream>>;

  Stream* Find(int64_t id) const;
  Stream* Add(std::unique_ptr<Stream> stream);
  void Erase(int64_t id);
  // Every stream, leaving the table empty (a 0-RTT rejection or a retried handshake keeps them).
  Map TakeAll();
  bool empty() const { return streams_.empty(); }
  Map::const_iterator begin() const { return streams_.begin(); }
  Map::const_iterator end() const { return streams_.end(); }

  // Queues a stream that has unsent bytes or FIN and is not flow-control blocked; returns true
  // if it was newly queued.
  bool MarkSendable(Stream* stream);
  // The stream at the head of the queue that still has something to send, or null.
  Stream* NextSendable();
  // The head stream wrote a packet: to the back of the queue if it has more, else out.
  void RotateSendable();
  // The head stream cannot send now (blocked, or its write side is shut).
  void DropSendable();
  void ClearSendable() { sendable_.clear(); }

 private:
  Map streams_;
  std::deque<int64_t> sendable_;
};

}  // namespace quicket
