#include "shared_replay_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "crypto.h"

namespace quicket {

// The file's layout is this format's: any change to it is a new kVersion.
struct SharedReplayStore::Header {
  uint64_t magic;        // written last: a process never sees a half-formatted header as a store
  uint32_t version;
  uint32_t slot_size;
  uint64_t capacity;
  uint64_t created_ms;   // when the file started recording: the store's age for Covers()
  uint64_t hash_key[4];  // random per file: clients cannot aim their randoms at one probe sequence
  uint64_t reserved[8];
};

// word: state (2 bits) | fingerprint (20 bits) | expiry (42 bits, ms since the epoch: until 2109).
// 0 is a slot never used; slots are never emptied again, only reused once expired.
struct SharedReplayStore::Slot {
  uint64_t word;
  uint64_t random[4];
};

struct SharedReplayStore::Probe {
  uint64_t start;
  uint64_t fingerprint;
};

namespace {
constexpr uint64_t kMagic = 0x59414c5045524b51;  // "QKREPLAY", little-endian
constexpr uint32_t kVersion = 1;
constexpr uint64_t kExpiryMask = (uint64_t{1} << 42) - 1;
constexpr uint64_t kFingerprintMask = (uint64_t{1} << 20) - 1;
constexpr uint64_t kStateMask = uint64_t{3} << 62;
constexpr uint64_t kClaimed = uint64_t{1} << 62;   // its random is being written
constexpr uint64_t kRecorded = uint64_t{2} << 62;  // its random is readable
// Lost races for a slot before giving up on 0-RTT: each loss means another process recorded a
// ClientHello near this one just now.
constexpr int kClaimAttempts = 8;

// The slots are shared with other processes: every access is atomic, and only lock-free atomics
// work across processes (a lock-based one would lock inside this process only).
static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0), "64-bit atomics must be lock-free");

uint64_t Load(const uint64_t& word) { return __atomic_load_n(&word, __ATOMIC_SEQ_CST); }
void Store(uint64_t& word, uint64_t value) { __atomic_store_n(&word, value, __ATOMIC_SEQ_CST); }
bool Swap(uint64_t& word, uint64_t expected, uint64_t desired) {
  return __atomic_compare_exchange_n(&word, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

uint64_t SlotWord(uint64_t state, uint64_t fingerprint, uint64_t expiry_ms) {
  return state | (fingerprint << 42) | std::min(expiry_ms, kExpiryMask);
}
uint64_t ExpiryOf(uint64_t word) { return word & kExpiryMask; }
uint64_t FingerprintOf(uint64_t word) { return (word >> 42) & kFingerprintMask; }

// splitmix64's finaliser: every input bit moves every output bit.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27;
  x *= 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

constexpr size_t kFileSize = 128 + SharedReplayStore::kCapacity * 40;

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Held while a process formats or checks the file. Unlocked explicitly: closing the descriptor
// would not release it while the file is mapped (the mapping keeps the open file, and its flock).
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {
    int result;
    do {
      result = flock(fd_, LOCK_EX);
    } while (result != 0 && errno == EINTR);
    locked_ = result == 0;
  }
  ~FileLock() {
    if (locked_) flock(fd_, LOCK_UN);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool locked() const { return locked_; }

 private:
  int fd_;
  bool locked_ = false;
};

std::nullptr_t SystemFailure(SharedReplayStoreError* error, const char* syscall, const std::string& path) {
  int code = errno;
  *error = {std::string("cannot ") + syscall + " " + path + ": " + strerror(code), syscall, code};
  return nullptr;
}

std::nullptr_t NotAStore(SharedReplayStoreError* error, const std::string& path, const std::string& why) {
  *error = {path + " is not a quicket anti-replay store (" + why + "); name a new file or remove this one", "", 0};
  return nullptr;
}

bool AllZero(const void* data, size_t length) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  return std::all_of(bytes, bytes + length, [](uint8_t byte) { return byte == 0; });
}
}  // namespace

SharedReplayStore::SharedReplayStore(void* mapping) : mapping_(mapping) {
  static_assert(sizeof(Header) + kCapacity * sizeof(Slot) == kFileSize, "the file's layout is fixed by kVersion");
}

SharedReplayStore::~SharedReplayStore() { munmap(mapping_, kFileSize); }

SharedReplayStore::Slot* SharedReplayStore::slot(uint64_t index) const {
  return reinterpret_cast<Slot*>(static_cast<uint8_t*>(mapping_) + sizeof(Header)) + index;
}

std::shared_ptr<SharedReplayStore> SharedReplayStore::Open(const std::string& path, SharedReplayStoreError* error) {
  FileDescriptor file(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (file.get() < 0) return SystemFailure(error, "open", path);
  struct stat info;
  if (fstat(file.get(), &info) != 0) return SystemFailure(error, "fstat", path);
  if (!S_ISREG(info.st_mode)) return NotAStore(error, path, "not a regular file");

  // One mapping per file and process, whatever path names it. Never destroyed: Workers may open
  // stores while the process exits.
  static std::mutex* registry_mutex = new std::mutex();
  static auto* registry = new std::map<std::pair<dev_t, ino_t>, std::weak_ptr<SharedReplayStore>>();
  std::lock_guard<std::mutex> lock(*registry_mutex);
  std::weak_ptr<SharedReplayStore>& entry = (*registry)[{info.st_dev, info.st_ino}];
  if (std::shared_ptr<SharedReplayStore> store = entry.lock()) return store;

  // Workers starting together format a new file once: under flock, which the kernel releases if
  // its holder dies (the next opener then finds the file still unformatted and formats it).
  FileLock file_lock(file.get());
  if (!file_lock.locked()) return SystemFailure(error, "flock", path);
  if (fstat(file.get(), &info) != 0) return SystemFailure(error, "fstat", path);
  bool fresh = info.st_size == 0;
  if (!fresh && static_cast<uint64_t>(info.st_size) != kFileSize) {
    return NotAStore(error, path, std::to_string(info.st_size) + " bytes, a store has " + std::to_string(kFileSize));
  }
  if (fresh && ftruncate(file.get(), kFileSize) != 0) return SystemFailure(error, "ftruncate", path);
  void* mapping = mmap(nullptr, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, file.get(), 0);
  if (mapping == MAP_FAILED) return SystemFailure(error, "mmap", path);
  std::shared_ptr<SharedReplayStore> store(new SharedReplayStore(mapping));
  std::string problem = store->Adopt(fresh);
  if (!problem.empty()) return NotAStore(error, path, problem);
  entry = store;
  return store;  // the mapping outlives the descriptor
}

std::string SharedReplayStore::Adopt(bool fresh) {
  Header* h = header();
  if (Load(h->magic) == 0 && AllZero(h, sizeof(Header))) {
    // New, or left unformatted by a process that died formatting it: nobody uses it yet.
    if (!fresh) memset(slot(0), 0, kCapacity * sizeof(Slot));
    if (!RandomBytes(reinterpret_cast<uint8_t*>(h->hash_key), sizeof(h->hash_key))) return "no randomness for its key";
    h->version = kVersion;
    h->slot_size = sizeof(Slot);
    h->capacity = kCapacity;
    h->created_ms = NowMs();
    Store(h->magic, kMagic);
  }
  if (Load(h->magic) != kMagic) return "unknown header";
  if (h->version != kVersion || h->slot_size != sizeof(Slot) || h->capacity != kCapacity) {
    return "format " + std::to_string(h->version) + ", this quicket reads format " + std::to_string(kVersion);
  }
  memcpy(hash_key_, h->hash_key, sizeof(hash_key_));
  created_ms_ = h->created_ms;
  return "";
}

SharedReplayStore::Probe SharedReplayStore::Locate(const ClientRandom& random) const {
  uint64_t words[4];
  memcpy(words, random.data(), sizeof(words));
  uint64_t hash = 0;
  for (size_t i = 0; i < 4; i++) hash = Mix(hash ^ words[i] ^ hash_key_[i]);
  return {hash & (kCapacity - 1), (hash >> 40) & kFingerprintMask};
}

bool SharedReplayStore::Seen(const ClientRandom& random, const Probe& probe, uint64_t now_ms, uint64_t skip,
                             uint64_t* reusable, uint64_t* seen_word) const {
  *reusable = kCapacity;
  for (size_t i = 0; i < kProbeLength; i++) {
    uint64_t index = (probe.start + i) & (kCapacity - 1);
    if (index == skip) continue;
    Slot* entry = slot(index);
    uint64_t word = Load(entry->word);
    if (word == 0 || ExpiryOf(word) <= now_ms) {
      if (*reusable == kCapacity) {
        *reusable = index;
        *seen_word = word;
      }
      // Every recording takes the first reusable slot of its sequence and slots never become
      // unused again, so no recording of this random lies beyond a never-used slot.
      if (word == 0) return false;
      continue;
    }
    if (FingerprintOf(word) != probe.fingerprint) continue;
    // A slot still being written may hold this random: counting it costs at most one 0-RTT.
    if ((word & kStateMask) != kRecorded) return true;
    uint64_t held[4];
    for (size_t j = 0; j < 4; j++) held[j] = Load(entry->random[j]);
    // A changed word: the slot expired and is being reused meanwhile; counting it is the safe side.
    if (Load(entry->word) != word || memcmp(held, random.data(), sizeof(held)) == 0) return true;
  }
  return false;
}

bool SharedReplayStore::Admit(const ClientRandom& random, uint64_t window_ms, uint64_t now_ms) {
  uint64_t expiry_ms = now_ms + EffectiveWindow(window_ms);
  Probe probe = Locate(random);
  uint64_t words[4];
  memcpy(words, random.data(), sizeof(words));
  for (int attempt = 0; attempt < kClaimAttempts; attempt++) {
    uint64_t reusable;
    uint64_t old_word = 0;
    if (Seen(random, probe, now_ms, kCapacity, &reusable, &old_word)) return false;
    if (reusable == kCapacity) return false;  // no room near this random: no 0-RTT
    Slot* entry = slot(reusable);
    if (!Swap(entry->word, old_word, SlotWord(kClaimed, probe.fingerprint, expiry_ms))) continue;
    for (size_t j = 0; j < 4; j++) Store(entry->random[j], words[j]);
    Store(entry->word, SlotWord(kRecorded, probe.fingerprint, expiry_ms));
    // Two processes recording one random at once have each published their slot before looking
    // again, so (all accesses sequentially consistent) at least one sees the other and refuses.
    return !Seen(random, probe, now_ms, reusable, &reusable, &old_word);
  }
  return false;
}

bool SharedReplayStore::Covers(uint64_t ticket_issued_ms, uint64_t window_ms, uint64_t now_ms) const {
  return CoversSince(created_ms_, ticket_issued_ms, window_ms, now_ms);
}

}  // namespace quicket
