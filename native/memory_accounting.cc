#include "memory_accounting.h"

#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define QUICKET_HAVE_MALLINFO2 1
#endif

namespace quicket::memory {

namespace {
bool counting = false;
std::atomic<int64_t> ngtcp2_bytes{0};
std::atomic<int64_t> openssl_bytes{0};

#ifdef QUICKET_HAVE_MALLINFO2
// glibc knows each block's size: counted as malloc sees it, and the heap's layout stays the one an
// uncounted run has.
void* CountedAlloc(std::atomic<int64_t>& counter, size_t size) {
  void* block = malloc(size);
  if (block) counter.fetch_add(static_cast<int64_t>(malloc_usable_size(block)), std::memory_order_relaxed);
  return block;
}

void CountedFree(std::atomic<int64_t>& counter, void* ptr) {
  if (!ptr) return;
  counter.fetch_sub(static_cast<int64_t>(malloc_usable_size(ptr)), std::memory_order_relaxed);
  free(ptr);
}

void* CountedRealloc(std::atomic<int64_t>& counter, void* ptr, size_t size) {
  int64_t old_size = ptr ? static_cast<int64_t>(malloc_usable_size(ptr)) : 0;
  void* grown = realloc(ptr, size);
  if (!grown) return nullptr;
  counter.fetch_add(static_cast<int64_t>(malloc_usable_size(grown)) - old_size, std::memory_order_relaxed);
  return grown;
}
#else
// Elsewhere each counted block starts with its size; 16 bytes keep the caller's block aligned.
constexpr size_t kHeader = 16;

void* CountedAlloc(std::atomic<int64_t>& counter, size_t size) {
  auto* block = static_cast<uint8_t*>(malloc(kHeader + size));
  if (!block) return nullptr;
  memcpy(block, &size, sizeof(size));
  counter.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed);
  return block + kHeader;
}

void CountedFree(std::atomic<int64_t>& counter, void* ptr) {
  if (!ptr) return;
  uint8_t* block = static_cast<uint8_t*>(ptr) - kHeader;
  size_t size;
  memcpy(&size, block, sizeof(size));
  counter.fetch_sub(static_cast<int64_t>(size), std::memory_order_relaxed);
  free(block);
}

void* CountedRealloc(std::atomic<int64_t>& counter, void* ptr, size_t size) {
  if (!ptr) return CountedAlloc(counter, size);
  uint8_t* block = static_cast<uint8_t*>(ptr) - kHeader;
  size_t old_size;
  memcpy(&old_size, block, sizeof(old_size));
  auto* grown = static_cast<uint8_t*>(realloc(block, kHeader + size));
  if (!grown) return nullptr;
  memcpy(grown, &size, sizeof(size));
  counter.fetch_add(static_cast<int64_t>(size) - static_cast<int64_t>(old_size), std::memory_order_relaxed);
  return grown + kHeader;
}
#endif

const ngtcp2_mem kNgtcp2Counting{
    nullptr,
    [](size_t size, void*) { return CountedAlloc(ngtcp2_bytes, size); },
    [](void* ptr, void*) { CountedFree(ngtcp2_bytes, ptr); },
    [](size_t nmemb, size_t size, void*) {
      void* ptr = CountedAlloc(ngtcp2_bytes, nmemb * size);
      if (ptr) memset(ptr, 0, nmemb * size);
      return ptr;
    },
    [](void* ptr, size_t size, void*) { return CountedRealloc(ngtcp2_bytes, ptr, size); },
};
}  // namespace

void InstallIfRequested() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* wanted = getenv("QUICKET_MEMORY_ACCOUNTING");
    if (!wanted || strcmp(wanted, "1") != 0) return;
    // Refused (0) once OpenSSL has allocated anything: then nothing is counted.
    counting = CRYPTO_set_mem_functions(
                   [](size_t size, const char*, int) { return CountedAlloc(openssl_bytes, size); },
                   [](void* ptr, size_t size, const char*, int) { return CountedRealloc(openssl_bytes, ptr, size); },
                   [](void* ptr, const char*, int) { CountedFree(openssl_bytes, ptr); }) == 1;
  });
}

const ngtcp2_mem* Ngtcp2Allocator() { return counting ? &kNgtcp2Counting : nullptr; }

Usage Current() {
  Usage usage;
  usage.counting = counting;
  usage.ngtcp2_bytes = ngtcp2_bytes.load(std::memory_order_relaxed);
  usage.openssl_bytes = openssl_bytes.load(std::memory_order_relaxed);
#ifdef QUICKET_HAVE_MALLINFO2
  struct mallinfo2 info = mallinfo2();
  usage.heap_in_use = static_cast<int64_t>(info.uordblks + info.hblkhd);
  usage.heap_free = static_cast<int64_t>(info.fordblks);
#endif
  return usage;
}

}  // namespace quicket::memory
