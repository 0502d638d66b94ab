// The addon's entry point: registers Engine, Connection and SslConfig, and the JS callbacks.
#include "addon.h"

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include "quic/connection.h"
#include "engine.h"
#include "memory_accounting.h"
#include "ssl_config.h"
#include "tls/crypto.h"

namespace quicket {

// setCallbacks({ onConnection, events: { handshake, streamData, ... } }): called once by lib/binding.ts.
static void SetCallbacks(const Napi::CallbackInfo& info) {
  AddonData* data = GetAddonData(info.Env());
  Napi::Object callbacks = info[0].As<Napi::Object>();
  data->on_connection = Napi::Persistent(callbacks.Get("onConnection").As<Napi::Function>());
  data->events.Load(callbacks.Get("events").As<Napi::Object>());
}

// memoryUsage(): what scripts/memory-profile.js splits an idle connection's memory by.
static Napi::Value MemoryUsage(const Napi::CallbackInfo& info) {
  memory::Usage usage = memory::Current();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("counting", usage.counting);
  result.Set("ngtcp2", static_cast<double>(usage.ngtcp2_bytes));
  result.Set("openssl", static_cast<double>(usage.openssl_bytes));
  result.Set("heapInUse", static_cast<double>(usage.heap_in_use));
  result.Set("heapFree", static_cast<double>(usage.heap_free));
  return result;
}

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  memory::InstallIfRequested();  // before OpenSSL's first allocation
  if (!InitCrypto()) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_TLS", "cannot initialise the vendored OpenSSL");
  }
  auto* data = new AddonData();
  env.SetInstanceData(data);
  Napi::Function connection = Connection::Init(env);
  data->connection_constructor = Napi::Persistent(connection);
  exports.Set("Engine", Engine::Init(env));
  exports.Set("Connection", connection);
  exports.Set("SslConfig", SslConfig::Init(env));
  exports.Set("setCallbacks", Napi::Function::New(env, SetCallbacks));
  exports.Set("memoryUsage", Napi::Function::New(env, MemoryUsage));
  exports.Set("versions", [&] {
    Napi::Object versions = Napi::Object::New(env);
    versions.Set("openssl", OpenSslVersion());
    versions.Set("ngtcp2", ngtcp2_version(0)->version_str);
    versions.Set("nghttp3", nghttp3_version(0)->version_str);
    return versions;
  }());
  exports.Set("socketFeatures", [&] {
    UdpSocket::Features features = UdpSocket::features();
    Napi::Object result = Napi::Object::New(env);
    result.Set("gso", features.gso);
    result.Set("gro", features.gro);
    result.Set("icmpErrors", features.icmp_errors);
    result.Set("reusePort", features.reuse_port);
    return result;
  }());
  return exports;
}

}  // namespace quicket

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return quicket::InitAddon(env, exports); }

NODE_API_MODULE(quicket, Init)
