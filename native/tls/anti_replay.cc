#include "anti_replay.h"

#include <cstring>

namespace quicket {

AntiReplay::AntiReplay() : started_ms_(NowMs()) {}

AntiReplay& AntiReplay::ForProcess() {
  // Never destroyed: a Worker may still handshake while the process exits.
  static AntiReplay* store = new AntiReplay();
  return *store;
}

size_t AntiReplay::RandomHash::operator()(const ClientRandom& random) const {
  // The client random is uniformly random already (or the client gains nothing but collisions).
  size_t hash;
  memcpy(&hash, random.data(), sizeof(hash));
  return hash;
}

void AntiReplay::Purge(uint64_t now_ms) {
  while (!by_age_.empty() && by_age_.front().expires_ms <= now_ms) {
    seen_.erase(by_age_.front().random);
    by_age_.pop_front();
  }
}

bool AntiReplay::Admit(const ClientRandom& random, uint64_t window_ms, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  Purge(now_ms);
  if (seen_.size() >= kMaxEntries) return false;
  if (!seen_.insert(random).second) return false;
  by_age_.push_back({now_ms + EffectiveWindow(window_ms), random});
  return true;
}

bool AntiReplay::Covers(uint64_t ticket_issued_ms, uint64_t window_ms, uint64_t now_ms) const {
  return CoversSince(started_ms_, ticket_issued_ms, window_ms, now_ms);
}

}  // namespace quicket
