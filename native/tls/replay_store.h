// ReplayStore: what a server consults before it accepts 0-RTT (RFC 8446 §8.2, ClientHello
// recording). Tickets stay stateless (OpenSSL's own protection would make them single-use inside
// one SSL_CTX, which breaks clusters and restarts); a store remembers every ClientHello whose early
// data was accepted, by its random, for the window. A replayed first flight has its 0-RTT refused
// (the connection may still resume). Two kinds: AntiReplay, one per process (the default), and
// SharedReplayStore, one file that every process of a cluster on one host maps.
//
// Freshness: OpenSSL accepts early data only when the client's reported ticket age is at most 1 s
// above and 9 s below its own measure (a 10 s allowance on a measure rounded up by 1 s), so a
// captured ClientHello stops being fresh 10 s after it was made; a window is never shorter than
// 11 s. A store that has just started never saw the ClientHellos of the moments before, so for one
// window it refuses 0-RTT on tickets issued before it started.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace quicket {

class ReplayStore {
 public:
  static constexpr uint64_t kMinWindowMs = 11000;
  using ClientRandom = std::array<uint8_t, 32>;

  virtual ~ReplayStore() = default;

  // True the first time a ClientHello with this random asks for 0-RTT within `window_ms`. Bounded
  // stores answer false when full: protection is never lost, only 0-RTT.
  virtual bool Admit(const ClientRandom& random, uint64_t window_ms, uint64_t now_ms) = 0;
  // False while the store is younger than `window_ms` and the ticket predates it.
  virtual bool Covers(uint64_t ticket_issued_ms, uint64_t window_ms, uint64_t now_ms) const = 0;

  static uint64_t EffectiveWindow(uint64_t window_ms) { return window_ms < kMinWindowMs ? kMinWindowMs : window_ms; }
  // Wall-clock milliseconds: ticket issue times travel between processes and restarts.
  static uint64_t NowMs() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

 protected:
  // A store started at `started_ms` covers the ClientHellos made since, and all of them once it is
  // a window old.
  static bool CoversSince(uint64_t started_ms, uint64_t ticket_issued_ms, uint64_t window_ms, uint64_t now_ms) {
    return ticket_issued_ms >= started_ms || now_ms >= started_ms + EffectiveWindow(window_ms);
  }
};

}  // namespace quicket
