// MemoryAccounting: how many bytes ngtcp2 and the vendored OpenSSL hold right now, and how much
// of the process's malloc heap is in use, for scripts/memory-profile.js to split the memory of
// idle connections by component.
//
// Off unless QUICKET_MEMORY_ACCOUNTING=1 when the addon loads: counting needs OpenSSL's allocator
// replaced before its first allocation. On glibc a block counts as malloc_usable_size() says (the
// heap looks as in an uncounted run); elsewhere a 16-byte header in front of each counted block
// holds its size. Off, ngtcp2 gets its default allocator and OpenSSL's is untouched.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <cstdint>

namespace quicket::memory {

// Called once at addon load, before OpenSSL is initialised.
void InstallIfRequested();
// The allocator to hand ngtcp2_conn_*_new: null (ngtcp2's own) unless counting.
const ngtcp2_mem* Ngtcp2Allocator();

struct Usage {
  bool counting = false;
  int64_t ngtcp2_bytes = 0;   // live bytes ngtcp2 allocated through Ngtcp2Allocator()
  int64_t openssl_bytes = 0;  // live bytes of the vendored OpenSSL (CRYPTO_malloc and friends)
  int64_t heap_in_use = -1;   // malloc's in-use bytes (glibc mallinfo2), -1 where unknown
  int64_t heap_free = -1;     // free bytes malloc keeps (fragmentation and slack), -1 where unknown
};
Usage Current();

}  // namespace quicket::memory
