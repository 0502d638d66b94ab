// AntiReplay: the per-process ReplayStore (replay_store.h), the default: every SslConfig and
// Worker thread of the process shares it. Processes of a reusePort cluster each have their own, so
// one captured 0-RTT flight can be accepted once per process; SharedReplayStore closes that gap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "replay_store.h"

namespace quicket {

class AntiReplay : public ReplayStore {
 public:
  // Bounded: when this many ClientHellos are remembered, further 0-RTT is refused (never lost
  // protection, only lost 0-RTT) until entries age out.
  static constexpr size_t kMaxEntries = 100000;

  // The process's store; it starts recording at its first use (the first SslConfig).
  static AntiReplay& ForProcess();

  bool Admit(const ClientRandom& random, uint64_t window_ms, uint64_t now_ms) override;
  bool Covers(uint64_t ticket_issued_ms, uint64_t window_ms, uint64_t now_ms) const override;

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
