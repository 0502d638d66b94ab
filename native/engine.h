// Engine: one UDP endpoint serving many connections, as a client, a server or both. It routes
// datagrams to connections by connection ID, accepts new ones while listening, and once per loop
// turn (a uv_check_t) delivers queued events to JS and flushes every connection that has packets
// to send.
//
// Ownership: the JS Engine object keeps this alive; while the socket is open the Engine also holds
// a reference to itself so an open endpoint is never collected. Connections are referenced from
// connections_ until they have finished and JS was told.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common.h"
#include "quic/address_validation.h"
#include "quic/connection.h"
#include "ssl_config.h"
#include "net/udp_socket.h"
#include "tls/reset_tokens.h"

namespace quicket {

class Engine;

// A connection ID as a routing key, held inline: as a std::string, an 18-byte ID needs the heap,
// once per route and once per datagram looked up.
struct CidKey {
  // Decoded IDs are at most NGTCP2_MAX_CIDLEN long (ngtcp2_pkt_decode_version_cid checks).
  CidKey(const uint8_t* data, size_t size) : length(static_cast<uint8_t>(std::min<size_t>(size, NGTCP2_MAX_CIDLEN))) {
    memcpy(bytes, data, length);
  }
  explicit CidKey(const ngtcp2_cid& cid) : CidKey(cid.data, cid.datalen) {}
  bool operator==(const CidKey& other) const { return length == other.length && memcmp(bytes, other.bytes, length) == 0; }
  uint8_t length;
  uint8_t bytes[NGTCP2_MAX_CIDLEN];
};
struct CidKeyHash {
  size_t operator()(const CidKey& key) const noexcept {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(key.bytes), key.length));
  }
};

// A socket of its own for a client connection that migrated (connection.migrate(), engine_paths.cc):
// bound to the engine socket's address on a new port, it receives for that connection only.
class PathSocket : public UdpSocket::Receiver {
 public:
  PathSocket(Engine* engine, Connection* owner) : engine_(engine), owner_(owner) {}
  void OnDatagram(const uint8_t* data, size_t length, const sockaddr* remote) override;
  // ICMP errors on a path are ignored, as on an established connection's (OnDestinationError).
  void OnDestinationError(const sockaddr*, int) override {}

  Engine* engine_;
  Connection* owner_;
  UdpSocket* socket_ = nullptr;
  bool closed_ = false;  // closing: what it still reads is dropped
};

class Engine : public Napi::ObjectWrap<Engine>, public UdpSocket::Receiver {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Engine(const Napi::CallbackInfo& info);
  ~Engine() override;

  // Connection-facing.
  void AddConnectionId(const ngtcp2_cid& cid, Connection* connection);
  void RemoveConnectionId(const ngtcp2_cid& cid);
  void MarkDirty(Connection* connection);
  void MarkHasEvents(Connection* connection);
  // The connection finished: it is released once JS has heard its last events.
  void MarkFinished(Connection* connection) { finished_.insert(connection); }
  // The connection has released its state; forget every route and reference to it.
  void Forget(Connection* connection);
  // A server connection's handshake completed: it no longer counts against maxHandshakes.
  void HandshakeCompleted(Connection* connection) { handshaking_.erase(connection); }
  const AddressValidation& address_validation() const { return validation_; }
  void SendBatch(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote);
  // engine_paths.cc: sockets for migrated client connections. SendOnPath sends from the socket
  // bound to path.local (the engine's own, or a connection's path socket).
  void SendOnPath(const uint8_t* data, size_t length, size_t segment, const ngtcp2_path& path);
  // Opens a socket for `owner` on a new port; 0 (and *local is its address) or a libuv error code.
  int OpenPathSocket(Connection* owner, const sockaddr** local);
  // Closes `owner`'s path sockets but the one bound to `keep` (null: all of them).
  void ClosePathSockets(Connection* owner, const sockaddr* keep);
  void ReceiveOnPath(PathSocket* path, const uint8_t* data, size_t length, const sockaddr* remote);
  // Scratch space for one GSO batch; flushes run one at a time, so connections share it.
  // One GSO send: its total must fit one UDP datagram over IPv4 (65535 - 20 - 8), or the kernel
  // refuses the whole batch (EMSGSIZE) once packets are large enough to fill 64 KiB exactly.
  static constexpr size_t kSendBufferSize = 65507;
  uint8_t* send_buffer() { return send_buffer_.get(); }
  // The stateless reset token of one of this engine's connection IDs (16 bytes into token).
  [[nodiscard]] bool ResetToken(const ngtcp2_cid& cid, uint8_t* token) const {
    return reset_tokens_.Generate(cid.data, cid.datalen, token);
  }
  Napi::AsyncContext& async_context() { return *async_context_; }
  uv_loop_t* loop() const { return loop_; }
  Napi::Value owner() const { return owner_.Value(); }
  void ReportCallbackException(const Napi::Error& error);

  void OnDatagram(const uint8_t* data, size_t length, const sockaddr* remote) override;
  void OnDestinationError(const sockaddr* destination, int error) override;

 private:
  // JS methods.
  Napi::Value Bind(const Napi::CallbackInfo& info);
  void Listen(const Napi::CallbackInfo& info);
  Napi::Value Address(const Napi::CallbackInfo& info);
  void SetWantKeylog(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  Napi::Value GetTicketKeys(const Napi::CallbackInfo& info);
  void SetTicketKeys(const Napi::CallbackInfo& info);
  void SetRef(const Napi::CallbackInfo& info);
  Napi::Value Counters(const Napi::CallbackInfo& info);

  Napi::Object AddressObject(Napi::Env env);
  int EnsureBound();
  // Creates, binds and starts socket_; on failure (a libuv error code) the engine has no socket.
  int OpenSocket(const sockaddr* address, bool reuse_port, bool ipv6_only);
  // Closes a socket that failed to bind or start; the engine stays usable.
  void DiscardSocket();
  void Accept(const uint8_t* data, size_t length, const sockaddr* remote);
  // Answers an Initial without creating a connection (Retry, or CONNECTION_CLOSE).
  void SendStateless(const uint8_t* packet, size_t length, const sockaddr* remote);
  void SendStatelessReset(const uint8_t* dcid, size_t dcidlen, size_t received, const sockaddr* remote);
  void DigestTransportSettings();
  static void OnCheck(uv_check_t* check);
  // The environment (main thread or Worker) is going away without close(): release every handle
  // without calling JS. Runs before N-API's finalizers, so before ~Engine.
  static void OnEnvironmentTeardown(void* self);
  void CloseHandles();
  void TerminateConnections();
  void RunTurn();
  void MaybeFinishClose();
  void HandleClosed();
  void KeepLoopSpinning();

  uv_loop_t* loop_ = nullptr;
  UdpSocket* socket_ = nullptr;
  uv_check_t* check_ = nullptr;
  uv_idle_t* idle_ = nullptr;  // keeps the loop from blocking in poll while work is pending
  bool listening_ = false;
  bool want_keylog_ = false;
  bool keeps_loop_alive_ = true;  // while the socket is open (ref()/unref())
  bool closing_ = false;
  bool torn_down_ = false;
  int handles_open_ = 0;
  Napi::FunctionReference close_callback_;

  std::shared_ptr<TlsContext> ssl_;
  Napi::ObjectReference ssl_object_;
  // This engine's ticket keys (from its SslConfig, or setTicketKeys) and transport-settings digest.
  ServerTicketPolicy ticket_policy_;
  TransportOptions transport_;
  uint8_t reset_secret_[32];
  ResetTokens reset_tokens_;  // keyed from reset_secret_
  // Address validation and caps (lib/engine.ts documents the defaults).
  enum class ValidationMode { kAuto, kAlways, kNever };
  ValidationMode validation_mode_ = ValidationMode::kAuto;
  AddressValidation validation_;
  uint64_t max_connections_ = 100000;
  uint64_t max_handshakes_ = 1000;
  uint64_t retries_sent_ = 0;
  uint64_t connections_refused_ = 0;
  uint64_t resets_sent_ = 0;
  uint64_t reset_window_start_ = 0;  // rate limit of stateless resets: this second's count
  uint64_t resets_in_window_ = 0;
  std::unique_ptr<uint8_t[]> send_buffer_{new uint8_t[kSendBufferSize]};

  std::unordered_map<CidKey, Connection*, CidKeyHash> routes_;
  std::unordered_map<Connection*, Napi::ObjectReference> connections_;
  std::unordered_set<Connection*> servers_;      // accepted connections (maxConnections)
  std::unordered_set<Connection*> handshaking_;  // accepted, handshake not complete (maxHandshakes)
  std::unordered_set<Connection*> clients_;  // our client connections: where a stateless reset may be for
  std::unordered_set<Connection*> dirty_;
  std::unordered_set<Connection*> with_events_;
  // Finished, not yet released: each turn looks at these, not at every connection (with 10,000
  // idle connections held, walking them all was most of a turn).
  std::unordered_set<Connection*> finished_;
  std::vector<PathSocket*> path_sockets_;  // each freed by its socket's close callback
  std::unique_ptr<Napi::AsyncContext> async_context_;
  Napi::ObjectReference owner_;
};

}  // namespace quicket
