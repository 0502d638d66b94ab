#include "common.h"


namespace quicket {

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
