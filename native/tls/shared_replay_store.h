// SharedReplayStore: a ReplayStore (replay_store.h) in a file that every process naming it maps
// MAP_SHARED, so the workers of a reusePort cluster on one host refuse a replayed 0-RTT flight
// whichever of them it reaches: at most one of them accepts it.
//
// The file: a header (format, capacity, when recording started, a per-file hash key) and a
// fixed-capacity open-addressing table of (client random, expiry) slots; expired slots are reused.
// Bounded: a ClientHello that finds no reusable slot within kProbeLength of its position gets no
// 0-RTT (never lost protection, only lost 0-RTT), as AntiReplay's kMaxEntries.
//
// Concurrency between processes is lock-free (compare-and-swap on each slot's 64-bit word, which
// also works where robust process-shared mutexes do not exist, such as macOS): a worker that dies
// at any instruction leaves at most one slot claimed until its expiry, and never blocks the
// others. The only lock is flock() while a process opens and, for a new file, formats it; the
// kernel drops it when its holder dies.
//
// Time is the host's wall clock, which every worker reads: an entry expires for all of them at
// once. (An Admit() given a clock reading already a window old could miss an entry the others have
// let expire meanwhile; the handshake reads the clock just before calling it.)
//
// Ownership: Open() hands out shared_ptrs; stores of one file within a process share one mapping,
// unmapped when the last TlsContext or engine policy using it goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "replay_store.h"

namespace quicket {

// Why Open() failed: a system call's errno, or (errno 0) a file that is not a store.
struct SharedReplayStoreError {
  std::string message;  // names the path
  std::string syscall;  // "open", "flock", "ftruncate", "mmap"; empty for a foreign file
  int system_errno = 0;
};

class SharedReplayStore : public ReplayStore {
 public:
  static constexpr uint64_t kCapacity = uint64_t{1} << 17;  // slots: 5 MiB of file
  static constexpr size_t kProbeLength = 128;

  // The store in the file at `path`, created (mode 0600) if missing. nullptr and `*error` (the path
  // and the system's reason, or why the file is not a store) when it cannot be opened or mapped, or
  // holds something else: a file of another format is never overwritten.
  static std::shared_ptr<SharedReplayStore> Open(const std::string& path, SharedReplayStoreError* error);
  ~SharedReplayStore() override;
  SharedReplayStore(const SharedReplayStore&) = delete;
  SharedReplayStore& operator=(const SharedReplayStore&) = delete;

  bool Admit(const ClientRandom& random, uint64_t window_ms, uint64_t now_ms) override;
  // The store's age is the file's, not this process's: a worker joining a running cluster covers
  // every ticket the file has seen the ClientHellos of.
  bool Covers(uint64_t ticket_issued_ms, uint64_t window_ms, uint64_t now_ms) const override;

 private:
  struct Header;
  struct Slot;
  struct Probe;

  explicit SharedReplayStore(void* mapping);
  Header* header() const { return static_cast<Header*>(mapping_); }
  Slot* slot(uint64_t index) const;
  // Formats a new file, or checks an existing one is a store of this format; empty or the reason.
  std::string Adopt(bool fresh);
  Probe Locate(const ClientRandom& random) const;
  // Walks the probe sequence: true if a live slot (other than `skip`) may hold `random`; else
  // `*reusable` is the first slot that can be claimed (or kCapacity) and `*seen_word` its word.
  bool Seen(const ClientRandom& random, const Probe& probe, uint64_t now_ms, uint64_t skip, uint64_t* reusable,
            uint64_t* seen_word) const;

  void* mapping_;
  // Copies of the header's constants, read once the header is known to be complete.
  uint64_t hash_key_[4] = {};
  uint64_t created_ms_ = 0;
};

}  // namespace quicket
