// StreamTable: a connection's streams by ID, and the round-robin queue of raw streams with
// something to send (so many streams share the packets fairly). The queues are lists: empty, they
// hold no memory (a std::deque keeps a block even then), and that is every idle connection's case.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

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

  // Opens asked for before the peer's limit (or the handshake, for HTTP/3) allowed them, in the
  // order asked. JS holds each as a Stream waiting on its token.
  struct PendingOpen {
    int64_t token;
    bool bidi;
    bool request;                      // an HTTP/3 request, with its headers
    std::vector<std::string> headers;
  };
  int64_t AddPending(bool bidi, bool request, std::vector<std::string> headers);
  void CancelPending(int64_t token);
  std::list<PendingOpen>& pending() { return pending_; }

 private:
  Map streams_;
  std::list<int64_t> sendable_;
  std::list<PendingOpen> pending_;
  int64_t next_token_ = 1;
};

}  // namespace quicket
