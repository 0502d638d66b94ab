// AntiReplay: quicket's own 0-RTT replay store (RFC 8446 §8.2, ClientHello recording). OpenSSL's
// built-in protection makes tickets single-use inside one SSL_CTX, which breaks clusters and
// restarts; tickets stay stateless and this store remembers every ClientHello whose early data
// was accepted, by its random, for the window. A replayed first flight has its 0-RTT refused
// (the connection may still resume).
//
// Freshness: OpenSSL accepts early data only when the client's reported ticket age is at most 1 s
// above and 10 s below its own measure, so a captured ClientHello stops being fresh 11 s after it
// was made; the window is never shorter than that. A store that has just started never saw the
// ClientHellos of the moments before, so for one window it refuses 0-RTT on tickets issued before
// it started.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_set>

namespace quicket {

class AntiReplay {
 public:
  static constexpr uint64_t kMinWindowMs = 11000;
  // Bounded: when this many ClientHellos are remembered, further 0-RTT is refused (never lost
  // protection, only lost 0-RTT) until entries age out.
  static constexpr size_t kMaxEntries = 100000;
  using ClientRandom = std::array<uint8_t, 32>;

  explicit AntiReplay(uint64_t window_ms);

  // True the first time a ClientHello with this random asks for 0-RTT within the window.
  bool Admit(const ClientRandom& random, uint64_t now_ms);
  // False while the store is younger than its window and the ticket predates it.
  bool Covers(uint64_t ticket_issued_ms, uint64_t now_ms) const;

  void set_window(uint64_t window_ms);
  uint64_t window_ms() const { return window_ms_; }

  // Wall-clock milliseconds: ticket issue times travel between processes and restarts.
  static uint64_t NowMs();

 private:
  struct RandomHash {
    size_t operator()(const ClientRandom& random) const;
  };
  struct Entry {
    uint64_t expires_ms;
    ClientRandom random;
  };
  void Purge(uint64_t now_ms);

  uint64_t window_ms_;
  uint64_t started_ms_;
  std::unordered_set<ClientRandom, RandomHash> seen_;
  std::deque<Entry> by_age_;  // admission order, so purging looks at the oldest only
};

}  // namespace quicket
