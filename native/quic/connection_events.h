// What a Connection tells JS, one struct per kind. ngtcp2 and nghttp3 callbacks never call JS:
// they queue these, and the Engine delivers each connection's queue once per loop turn, each kind
// through its own JS function (lib/binding.ts registers them; lib/native-events.ts types them).
#pragma once

#include <napi.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace quicket::events {

// Server: the client's first Initial decrypted; JS gets a Connection object (handled by Engine).
struct NewConnection {};
enum class EarlyData : uint8_t { kNone, kAccepted, kRejected };
struct Handshake {
  std::string alpn;
  std::string servername;
  bool resumed = false;
  EarlyData early_data = EarlyData::kNone;
};
// Server: the ClientHello's PSK was accepted (before any 0-RTT stream is delivered).
struct Resumed {};
struct StreamOpen {
  int64_t id;
  bool early;
};
struct StreamData {
  int64_t id;
  std::string bytes;
  bool fin;
};
struct StreamReset {
  int64_t id;
  uint64_t code;
  bool stop_sending;
};
struct StreamClose {
  int64_t id;
  uint64_t code;
};
struct StreamDrain {
  int64_t id;
};
// A stream asked for while the peer's limit (or the protocol) did not allow it yet, by the
// (negative) value JS got for it: now open with this ID, or never (with a coded error).
struct StreamOpened {
  int64_t token;
  int64_t id;
};
struct StreamOpenFailed {
  int64_t token;
  const char* code;
  std::string message;
};
struct Headers {
  int64_t id;
  std::vector<std::string> fields;  // name, value, name, value, ...
  bool trailers;
};
struct Ticket {
  std::string session_data;
  std::string transport_params;
  uint32_t lifetime_seconds;
  bool early_data;
  std::string address_token;  // the server's NEW_TOKEN, when one came with or before the ticket
};
struct TicketRejected {
  const char* reason;  // 'malformed' | 'refused'
};
struct EarlyDataRejected {};
struct Keylog {
  std::string line;
};
// The connection moved to a new validated path: the peer's address changed (NAT rebinding, its
// migration), or migrate() moved us to a new local port. connection_paths.cc says when.
struct PathChange {
  sockaddr_storage local{}, remote{};
  sockaddr_storage previous_local{}, previous_remote{};
};
// migrate()'s new path did not validate (or another migration replaced it); the old path stays.
struct MigrationFailed {
  std::string message;
};
// Why the connection ended.
struct Close {
  std::string error_code;   // JS error code when the close is an error; empty otherwise
  std::string error_message;
  uint64_t quic_code = 0;   // the QUIC error code sent or received
  std::string reason;
  bool application = true;  // application vs transport error space
  bool remote = false;
  int system_error = 0;     // a libuv error code: the error is node:net-shaped (MakeSystemError)
  sockaddr_storage peer{};  // for a system error's address and port
};

// The order is the JS side's too: kNames below lists the same kinds.
using Event = std::variant<NewConnection, Handshake, Resumed, StreamOpen, StreamData, StreamReset, StreamClose,
                           StreamDrain, StreamOpened, StreamOpenFailed, Headers, Ticket, TicketRejected, EarlyDataRejected,
                           Keylog, PathChange, MigrationFailed, Close>;
constexpr size_t kKinds = std::variant_size_v<Event>;

// One JS function per kind, each called as (connectionOwner, ...the kind's fields).
class Callbacks {
 public:
  // Takes `events.<name>` for every kind but NewConnection; throws a TypeError if one is missing.
  void Load(Napi::Object events);
  // Calls the event's function; returns what it returned (StreamData: whether to credit at once).
  Napi::Value Deliver(Napi::Env env, Napi::Object owner, Event& event, napi_async_context context) const;

 private:
  Napi::FunctionReference by_kind_[kKinds];
};

}  // namespace quicket::events
