// AntiReplay: quicket's own 0-RTT replay store (RFC 8446 §8.2, ClientHello recording), one per
// process: every SslConfig and Worker thread shares it. OpenSSL's built-in protection makes
// tickets single-use inside one SSL_CTX, which breaks clusters and restarts; tickets stay
// stateless and this store remembers every ClientHello whose early data was accepted, by its
// random, for the window. A replayed first flight has its 0-RTT refused (the connection may
// still resume).
//
// Freshness: OpenSSL accepts early data only when the client's reported ticket age is at most 1 s
// above and 9 s below its own measure (a 10 s allowance on a measure rounded up by 1 s), so a
// captured ClientHello stops being fresh 10 s after it was made; a window is never shorter than
// 11 s. A process that has just started never saw the
// ClientHellos of the moments before, so for one window it refuses 0-RTT on tickets issued before
// its store started.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_set>

namespace quicket {

class AntiReplay {
 public:
  static constexpr uint64_t kMinWindowMs = 11000;
  // Bounded: when this many ClientHellos are remembered, further 0-RTT is refused (never lost
  // protection, only lost 0-RTT) until entries age out.
  static constexpr size_t kMaxEntries = 100000;
  using ClientRandom = std::array<uint8_t, 32>;

  // The process's store; it starts recording at its first use (the first SslConfig).
  static AntiReplay& ForProcess();

  // True the first time a ClientHello with this random asks for 0-RTT within `window_ms`.
  bool Admit(const ClientRandom& random, uint64_t window_ms, uint64_t now_ms);
  // False while the store is younger than `window_ms` and the ticket predates it.
  bool Covers(uint64_t ticket_issued_ms, uint64_t window_ms, uint64_t now_ms) const;

  static uint64_t EffectiveWindow(uint64_t window_ms) { return window_ms < kMinWindowMs ? kMinWindowMs : window_ms; }
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
  AntiReplay();
  void Purge(uint64_t now_ms);

  const uint64_t started_ms_;
  std::mutex mutex_;  // Worker threads handshake concurrently
  std::unordered_set<ClientRandom, RandomHash> seen_;
  std::deque<Entry> by_age_;  // admission order, so purging looks at the oldest only
};

}  // namespace quicket
