// Shared helpers for quicket's native classes: coded errors and the QUIC clock.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <string>

namespace quicket {

// ngtcp2 wants a monotonic nanosecond clock; libuv's hrtime is that clock.
inline uint64_t Now() { return uv_hrtime(); }

enum class ErrorKind { kError, kTypeError, kRangeError };

// Throws a JS error carrying a Node-style `code` property (ERR_QUIC_..., ERR_INVALID_ARG_...).
[[noreturn]] void ThrowCoded(Napi::Env env, ErrorKind kind, const char* code,
                             const std::string& message);

Napi::Error MakeCodedError(Napi::Env env, const char* code, const std::string& message);

// Copies a Buffer (or Uint8Array) argument into a std::string of bytes.
std::string BytesOf(const Napi::Value& value);

}  // namespace quicket
