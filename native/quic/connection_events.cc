#include "connection_events.h"

#include "../common.h"

namespace quicket::events {

namespace {
// The JS name of each kind, in the variant's order (NewConnection goes through onConnection).
constexpr const char* kNames[kKinds] = {
    nullptr,          "handshake", "resumed", "streamOpen",        "streamData", "streamReset",
    "streamClose",    "streamDrain", "streamOpened", "streamOpenFailed", "headers", "ticket",  "ticketRejected",
    "earlyDataRejected", "keylog", "pathChange", "migrationFailed", "close",
};

Napi::Value BigIntOf(Napi::Env env, int64_t value) { return Napi::BigInt::New(env, value); }
Napi::Value NumberOf(Napi::Env env, uint64_t value) { return Napi::Number::New(env, static_cast<double>(value)); }
Napi::Value Copy(Napi::Env env, const std::string& bytes) {
  return Napi::Buffer<char>::Copy(env, bytes.data(), bytes.size());
}

// Hands received bytes to JS without copying them again when they are worth it.
Napi::Value Take(Napi::Env env, std::string* bytes) {
  if (bytes->size() < 4096) return Copy(env, *bytes);
  auto* owned = new std::string(std::move(*bytes));
  return Napi::Buffer<char>::New(env, owned->data(), owned->size(),
                                 [](Napi::Env, char*, std::string* data) { delete data; }, owned);
}

// The arguments after the owner, per kind.
struct Arguments {
  Napi::Env env;
  std::vector<napi_value> args;

  void Add(Napi::Value value) { args.push_back(value); }

  void operator()(NewConnection&) {}
  void operator()(Handshake& event) {
    Napi::Object info = Napi::Object::New(env);
    info.Set("alpn", event.alpn);
    info.Set("servername", event.servername);
    info.Set("resumed", event.resumed);
    info.Set("earlyData", event.early_data == EarlyData::kAccepted   ? "accepted"
                          : event.early_data == EarlyData::kRejected ? "rejected"
                                                                     : "none");
    Add(info);
  }
  void operator()(Resumed&) {}
  void operator()(StreamOpen& event) {
    Add(BigIntOf(env, event.id));
    Add(Napi::Boolean::New(env, event.early));
  }
  void operator()(StreamData& event) {
    Add(BigIntOf(env, event.id));
    Add(Take(env, &event.bytes));
    Add(Napi::Boolean::New(env, event.fin));
  }
  void operator()(StreamReset& event) {
    Add(BigIntOf(env, event.id));
    Add(NumberOf(env, event.code));
    Add(Napi::Boolean::New(env, event.stop_sending));
  }
  void operator()(StreamClose& event) {
    Add(BigIntOf(env, event.id));
    Add(NumberOf(env, event.code));
  }
  void operator()(StreamDrain& event) { Add(BigIntOf(env, event.id)); }
  void operator()(StreamOpened& event) {
    Add(BigIntOf(env, event.token));
    Add(BigIntOf(env, event.id));
  }
  void operator()(StreamOpenFailed& event) {
    Add(BigIntOf(env, event.token));
    Add(MakeCodedError(env, event.code, event.message).Value());
  }
  void operator()(Headers& event) {
    Napi::Array fields = Napi::Array::New(env, event.fields.size());
    for (uint32_t i = 0; i < event.fields.size(); i++) fields.Set(i, event.fields[i]);
    Add(BigIntOf(env, event.id));
    Add(fields);
    Add(Napi::Boolean::New(env, event.trailers));
  }
  void operator()(Ticket& event) {
    Add(Copy(env, event.session_data));
    Add(Copy(env, event.transport_params));
    Add(NumberOf(env, event.lifetime_seconds));
    Add(Napi::Boolean::New(env, event.early_data));
    Add(event.address_token.empty() ? env.Undefined() : Copy(env, event.address_token));
  }
  void operator()(TicketRejected& event) { Add(Napi::String::New(env, event.reason)); }
  void operator()(EarlyDataRejected&) {}
  void operator()(Keylog& event) { Add(Copy(env, event.line)); }
  void operator()(PathChange& event) {
    Napi::Object info = Napi::Object::New(env);
    auto set = [&](const char* address, const char* port, const sockaddr_storage& storage) {
      const auto* addr = reinterpret_cast<const sockaddr*>(&storage);
      info.Set(address, HostOf(addr));
      info.Set(port, PortOf(addr));
    };
    set("remoteAddress", "remotePort", event.remote);
    set("previousRemoteAddress", "previousRemotePort", event.previous_remote);
    set("localAddress", "localPort", event.local);
    set("previousLocalAddress", "previousLocalPort", event.previous_local);
    Add(info);
  }
  void operator()(MigrationFailed& event) {
    Add(MakeCodedError(env, "ERR_QUIC_MIGRATION_FAILED", event.message).Value());
  }
  void operator()(Close& event) {
    Napi::Object info = Napi::Object::New(env);
    if (event.system_error != 0) {
      info.Set("error",
               MakeSystemError(env, event.system_error, "connect", reinterpret_cast<const sockaddr*>(&event.peer)).Value());
    } else if (!event.error_code.empty()) {
      info.Set("error", MakeCodedError(env, event.error_code.c_str(), event.error_message).Value());
    }
    info.Set("code", NumberOf(env, event.quic_code));
    info.Set("reason", event.reason);
    info.Set("type", event.application ? "application" : "transport");
    info.Set("remote", event.remote);
    Add(info);
  }
};
}  // namespace

void Callbacks::Load(Napi::Object events) {
  for (size_t kind = 0; kind < kKinds; kind++) {
    if (!kNames[kind]) continue;
    Napi::Value callback = events.Get(kNames[kind]);
    if (!callback.IsFunction()) {
      ThrowCoded(events.Env(), ErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE",
                 std::string("events.") + kNames[kind] + " must be a function");
    }
    by_kind_[kind] = Napi::Persistent(callback.As<Napi::Function>());
  }
}

Napi::Value Callbacks::Deliver(Napi::Env env, Napi::Object owner, Event& event, napi_async_context context) const {
  Arguments arguments{env, {owner}};
  std::visit(arguments, event);
  return by_kind_[event.index()].MakeCallback(env.Global(), arguments.args, context);
}

}  // namespace quicket::events
