#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace quicket {

std::string HostOf(const sockaddr* address) {
  char host[INET6_ADDRSTRLEN] = "";
  if (address->sa_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(address), host, sizeof(host));
  } else {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(address), host, sizeof(host));
  }
  return host;
}

int PortOf(const sockaddr* address) {
  return ntohs(address->sa_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(address)->sin6_port
                                              : reinterpret_cast<const sockaddr_in*>(address)->sin_port);
}

Napi::Error MakeSystemError(Napi::Env env, int uv_error, const char* syscall, const sockaddr* address) {
  std::string host = HostOf(address);
  int port = PortOf(address);
  Napi::Error error = MakeCodedError(env, uv_err_name(uv_error),
                                     std::string(syscall) + " " + uv_err_name(uv_error) + " " + host + ":" + std::to_string(port));
  error.Set("errno", Napi::Number::New(env, uv_error));
  error.Set("syscall", syscall);
  error.Set("address", host);
  error.Set("port", Napi::Number::New(env, port));
  return error;
}

Napi::Error MakeCodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

void ThrowCoded(Napi::Env env, ErrorKind kind, const char* code, const std::string& message) {
  Napi::Error error = kind == ErrorKind::kTypeError    ? Napi::TypeError::New(env, message)
                      : kind == ErrorKind::kRangeError ? Napi::RangeError::New(env, message)
                                                       : Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  throw error;
}

std::string BytesOf(const Napi::Value& value) {
  if (!value.IsTypedArray()) {
    ThrowCoded(value.Env(), ErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", "expected a Buffer");
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  return std::string(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
}

}  // namespace quicket
