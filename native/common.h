// Shared helpers for quicket's native classes: coded errors and the QUIC clock.
#pragma once

#include <napi.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <string>

#include "net/address.h"

namespace quicket {

// ngtcp2 wants a monotonic nanosecond clock; libuv's hrtime is that clock.
inline uint64_t Now() { return uv_hrtime(); }

enum class ErrorKind { kError, kTypeError, kRangeError };

// Throws a JS error carrying a Node-style `code` property (ERR_QUIC_..., ERR_INVALID_ARG_...).
[[noreturn]] void ThrowCoded(Napi::Env env, ErrorKind kind, const char* code,
                             const std::string& message);

Napi::Error MakeCodedError(Napi::Env env, const char* code, const std::string& message);

// A system error shaped like node:net's: `connect ECONNREFUSED 127.0.0.1:4433`, with `code`,
// `errno` (libuv's negative number, as in os.constants.errno negated), `syscall`, `address`, `port`.
Napi::Error MakeSystemError(Napi::Env env, int uv_error, const char* syscall, const sockaddr* address);

// Copies a Buffer (or Uint8Array) argument into a std::string of bytes.
std::string BytesOf(const Napi::Value& value);

}  // namespace quicket
