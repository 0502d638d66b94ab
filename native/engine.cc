#include "engine.h"

#include <arpa/inet.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>

#include "addon.h"
#include "tls/crypto.h"

namespace quicket {

namespace {
constexpr size_t kServerCidLength = 18;
// addressValidation 'auto': Retry once this many handshakes are in progress (about 6 MiB of them).
constexpr size_t kRetryThreshold = 100;

uint64_t OptionalNumber(const Napi::Object& options, const char* name, uint64_t fallback) {
  Napi::Value value = options.Get(name);
  return value.IsNumber() ? static_cast<uint64_t>(value.As<Napi::Number>().Int64Value()) : fallback;
}

// A socket call failed: a system error like node:dgram's (code the errno name, errno, syscall).
void ThrowUv(Napi::Env env, int error, const char* syscall, const std::string& what) {
  Napi::Error system = MakeCodedError(env, uv_err_name(error), std::string(syscall) + " " + uv_err_name(error) + ": " + what);
  system.Set("errno", Napi::Number::New(env, error));
  system.Set("syscall", syscall);
  throw system;
}
}  // namespace

Napi::Function Engine::Init(Napi::Env env) {
  return DefineClass(env, "Engine",
                     {InstanceMethod<&Engine::Bind>("bind"),
                      InstanceMethod<&Engine::Address>("address"),
                      InstanceMethod<&Engine::SetWantKeylog>("setWantKeylog"),
                      InstanceMethod<&Engine::Listen>("listen"),
                      InstanceMethod<&Engine::Connect>("connect"),
                      InstanceMethod<&Engine::Close>("close"),
                      InstanceMethod<&Engine::GetTicketKeys>("getTicketKeys"),
                      InstanceMethod<&Engine::SetTicketKeys>("setTicketKeys"),
                      InstanceMethod<&Engine::SetRef>("setRef"),
                      InstanceMethod<&Engine::Counters>("counters")});
}

// new Engine(owner, { ssl?, idleTimeout, handshakeTimeout, maxStreamsBidi, ... }), validated in lib/engine.ts.
Engine::Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
  Napi::Env env = info.Env();
  owner_ = Napi::Persistent(info[0].As<Napi::Object>());
  Napi::Object options = info[1].As<Napi::Object>();
  if (SslConfig* ssl = SslConfig::FromValue(options.Get("ssl"))) {
    ssl_ = ssl->context();
    ticket_policy_.keys = ssl->ticket_keys();
    ssl_object_ = Napi::Persistent(options.Get("ssl").As<Napi::Object>());
  }
  // The engine's antiReplayStore overrides its SslConfig's for the connections it accepts.
  if (options.Get("antiReplayStore").IsString()) {
    ticket_policy_.replay_store = SslConfig::OpenReplayStore(env, options.Get("antiReplayStore").As<Napi::String>());
  }
  transport_.idle_timeout_ms = OptionalNumber(options, "idleTimeout", transport_.idle_timeout_ms);
  transport_.handshake_timeout_ms = OptionalNumber(options, "handshakeTimeout", transport_.handshake_timeout_ms);
  transport_.keep_alive_ms = OptionalNumber(options, "keepAlive", transport_.keep_alive_ms);
  if (options.Get("congestionControl").IsString()) {
    std::string name = options.Get("congestionControl").As<Napi::String>();
    transport_.congestion_control = name == "cubic"  ? NGTCP2_CC_ALGO_CUBIC
                                    : name == "reno" ? NGTCP2_CC_ALGO_RENO
                                                     : NGTCP2_CC_ALGO_BBR;
  }
  transport_.max_streams_bidi = OptionalNumber(options, "maxStreamsBidi", transport_.max_streams_bidi);
  transport_.max_streams_uni = OptionalNumber(options, "maxStreamsUni", transport_.max_streams_uni);
  for (TransportOptions::Windows* windows : {&transport_.server_windows, &transport_.client_windows}) {
    windows->stream = OptionalNumber(options, "streamWindow", windows->stream);
    windows->connection = OptionalNumber(options, "connectionWindow", windows->connection);
  }
  if (options.Get("qlogDir").IsString()) transport_.qlog_dir = options.Get("qlogDir").As<Napi::String>();
  DigestTransportSettings();
  // The same key across restarts and cluster members lets a server that lost a connection's state
  // still reset it (its tokens derive from the key and the connection ID).
  if (options.Get("statelessResetKey").IsTypedArray()) {
    std::string key = BytesOf(options.Get("statelessResetKey"));
    memcpy(reset_secret_, key.data(), std::min(key.size(), sizeof(reset_secret_)));
  } else if (!RandomBytes(reset_secret_, sizeof(reset_secret_))) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_TLS", "cannot generate the stateless reset secret");
  }
  if (!reset_tokens_.SetKey(reset_secret_, sizeof(reset_secret_))) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_TLS", "cannot key the stateless reset tokens");
  }
  validation_.SetKey(reset_secret_, sizeof(reset_secret_));
  validation_.SetLifetimes(OptionalNumber(options, "retryTokenLifetime", AddressValidation::kRetryTokenLifetimeMs),
                           OptionalNumber(options, "addressTokenLifetime", AddressValidation::kNewTokenLifetimeMs));
  if (options.Get("addressValidation").IsString()) {
    std::string mode = options.Get("addressValidation").As<Napi::String>();
    validation_mode_ = mode == "always" ? ValidationMode::kAlways : mode == "never" ? ValidationMode::kNever : ValidationMode::kAuto;
  }
  max_connections_ = OptionalNumber(options, "maxConnections", max_connections_);
  max_handshakes_ = OptionalNumber(options, "maxHandshakes", max_handshakes_);

  napi_get_uv_event_loop(env, &loop_);
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "quicket.Engine");
  check_ = new uv_check_t;
  uv_check_init(loop_, check_);
  check_->data = this;
  uv_check_start(check_, OnCheck);
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
  handles_open_ = 2;
  // An open endpoint must not be collected: released when close() completes.
  Ref();
  napi_add_env_cleanup_hook(env, OnEnvironmentTeardown, this);
}

Engine::~Engine() {
  if (!torn_down_) napi_remove_env_cleanup_hook(Env(), OnEnvironmentTeardown, this);
  TerminateConnections();
}

// Terminate() makes each connection Forget() itself: iterate a copy.
void Engine::TerminateConnections() {
  std::vector<Connection*> open;
  for (auto& [connection, reference] : connections_) open.push_back(connection);
  for (Connection* connection : open) connection->Terminate();
}

void Engine::OnEnvironmentTeardown(void* data) {
  auto* self = static_cast<Engine*>(data);
  self->torn_down_ = true;
  self->closing_ = true;
  self->listening_ = false;
  self->TerminateConnections();
  self->CloseHandles();
}

// Tickets carry a digest of the 0-RTT-relevant transport settings they were issued under: a
// client remembers those limits for 0-RTT, so after a change its ticket still resumes but its
// early data is refused (and replayed by the client) instead of breaking the new limits.
void Engine::DigestTransportSettings() {
  const uint64_t settings[] = {transport_.server_windows.stream, transport_.server_windows.connection,
                               transport_.max_streams_bidi, transport_.max_streams_uni,
                               transport_.idle_timeout_ms};
  ticket_policy_.settings_digest = Sha256(std::string(reinterpret_cast<const char*>(settings), sizeof(settings)));
}

Napi::Value Engine::GetTicketKeys(const Napi::CallbackInfo& info) {
  if (!ticket_policy_.keys) return info.Env().Undefined();
  std::string key = ticket_policy_.keys->NewestBytes();
  return Napi::Buffer<char>::Copy(info.Env(), key.data(), key.size());
}

void Engine::SetTicketKeys(const Napi::CallbackInfo& info) {
  if (!ssl_) ThrowCoded(info.Env(), ErrorKind::kError, "ERR_QUIC_NO_SSL_CONFIG", "the engine has no server SslConfig");
  // This engine's keys only: other engines sharing the SslConfig keep theirs (like tls.Server).
  ticket_policy_.keys = TicketKeyRing::Make(SslConfig::KeysOf(info[0]));
}

// A client's socket is dual-stack (`::`, IPv4 mapped), so one engine reaches IPv4 and IPv6 peers;
// on a host without IPv6 it falls back to IPv4 only. After a failure a later connect() tries again.
int Engine::EnsureBound() {
  if (socket_) return 0;
  sockaddr_storage any{};
  ParseAddress("::", 0, &any);
  int rv = OpenSocket(reinterpret_cast<sockaddr*>(&any), false, false);
  if (rv == 0) return 0;
  ParseAddress("0.0.0.0", 0, &any);
  return OpenSocket(reinterpret_cast<sockaddr*>(&any), false, false);
}

int Engine::OpenSocket(const sockaddr* address, bool reuse_port, bool ipv6_only) {
  socket_ = new UdpSocket(loop_, this);
  handles_open_++;
  int rv = socket_->Bind(address, reuse_port, ipv6_only);
  if (rv == 0) rv = socket_->Start();
  if (rv != 0) {
    DiscardSocket();
    return rv;
  }
  socket_->SetRef(keeps_loop_alive_);
  return 0;
}

void Engine::DiscardSocket() {
  UdpSocket* failed = socket_;
  socket_ = nullptr;
  handles_open_--;         // close() does not wait for it
  failed->Close(nullptr);  // it frees itself; nothing calls back into a possibly freed Engine
}

Napi::Object Engine::AddressObject(Napi::Env env) {
  Napi::Object result = Napi::Object::New(env);
  const sockaddr* local = socket_->local_address();
  result.Set("address", HostOf(local));
  result.Set("port", PortOf(local));
  result.Set("family", local->sa_family == AF_INET6 ? "IPv6" : "IPv4");
  return result;
}

// bind(host, port, reusePort, ipv6Only) -> { address, port, family }
Napi::Value Engine::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_ENGINE_CLOSED", "the engine is closed");
  // connect() already bound an ephemeral socket; moving live connections to another is not done.
  if (socket_) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_ALREADY_BOUND",
               "the engine's socket is already bound (by connect()): listen() first, or listen on another engine");
  }
  std::string host = info[0].As<Napi::String>();
  int port = info[1].As<Napi::Number>().Int32Value();
  sockaddr_storage address;
  if (!ParseAddress(host, port, &address)) {
    ThrowCoded(env, ErrorKind::kError, "ERR_INVALID_ADDRESS", "not an IP address: " + host);
  }
  bool reuse_port = info[2].ToBoolean();
  int rv = OpenSocket(reinterpret_cast<sockaddr*>(&address), reuse_port, info[3].ToBoolean());
  if (rv == UV_ENOTSUP && reuse_port) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_REUSEPORT_UNSUPPORTED",
               "reusePort needs a kernel that balances SO_REUSEPORT sockets by flow (Linux)");
  }
  // Like node:dgram's: code EADDRINUSE (or another errno name), errno, syscall, address, port.
  if (rv != 0) throw MakeSystemError(env, rv, "bind", reinterpret_cast<sockaddr*>(&address));
  return AddressObject(env);
}

// setRef(ref): like net.Server's ref()/unref(), remembered for a socket bound later. Only the
// socket holds the loop: connection timers and the engine's check/idle handles never do.
void Engine::SetRef(const Napi::CallbackInfo& info) {
  keeps_loop_alive_ = info[0].ToBoolean();
  if (socket_) socket_->SetRef(keeps_loop_alive_);
}

// Server connections log their TLS secrets from the first ClientHello on, before JS sees them.
void Engine::SetWantKeylog(const Napi::CallbackInfo& info) { want_keylog_ = info[0].ToBoolean(); }

// address() -> { address, port, family }, or undefined before the socket exists.
Napi::Value Engine::Address(const Napi::CallbackInfo& info) {
  return socket_ ? AddressObject(info.Env()) : info.Env().Undefined();
}

void Engine::Listen(const Napi::CallbackInfo& info) {
  if (!ssl_ || !ssl_->has_certificate()) {
    ThrowCoded(info.Env(), ErrorKind::kError, "ERR_QUIC_NO_CERTIFICATE", "listening needs an SslConfig with cert and key");
  }
  listening_ = true;
}

// connect(owner, { addresses[], port, attemptTimeout, servername, ssl, alpn[], sessionData?,
// transportParams?, earlyData }): `addresses` are IP literals, tried in order (connection_addresses.cc).
Napi::Value Engine::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_ENGINE_CLOSED", "the engine is closed");
  Napi::Object owner = info[0].As<Napi::Object>();
  Napi::Object options = info[1].As<Napi::Object>();
  Napi::Array hosts = options.Get("addresses").As<Napi::Array>();
  int port = options.Get("port").As<Napi::Number>().Int32Value();
  int rv = EnsureBound();
  if (rv != 0) ThrowUv(env, rv, "bind", "cannot open a UDP socket");
  ClientOptions client;
  std::string unreachable;
  for (uint32_t i = 0; i < hosts.Length(); i++) {
    std::string host = hosts.Get(i).As<Napi::String>();
    sockaddr_storage remote;
    if (!ParseAddress(host, port, &remote)) {
      ThrowCoded(env, ErrorKind::kError, "ERR_INVALID_ADDRESS", "not an IP address: " + host);
    }
    // A socket bound to one family (listen() on an IPv4 address, say) skips the other's addresses.
    if (socket_->CanReach(reinterpret_cast<sockaddr*>(&remote))) {
      client.addresses.push_back(remote);
    } else if (unreachable.empty()) {
      unreachable = host;
    }
  }
  if (client.addresses.empty()) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_ADDRESS_FAMILY",
               "this engine's socket is of another address family than " + unreachable);
  }
  client.attempt_timeout_ms = OptionalNumber(options, "attemptTimeout", client.attempt_timeout_ms);
  SslConfig* ssl = SslConfig::FromValue(options.Get("ssl"));
  client.servername = options.Get("servername").As<Napi::String>();
  Napi::Array alpn = options.Get("alpn").As<Napi::Array>();
  for (uint32_t i = 0; i < alpn.Length(); i++) client.alpn.push_back(alpn.Get(i).As<Napi::String>());
  if (options.Get("sessionData").IsTypedArray()) client.session_data = BytesOf(options.Get("sessionData"));
  if (options.Get("transportParams").IsTypedArray()) client.transport_params = BytesOf(options.Get("transportParams"));
  client.early_data = options.Get("earlyData").ToBoolean();
  if (options.Get("addressToken").IsTypedArray()) client.address_token = BytesOf(options.Get("addressToken"));

  Napi::Object object = GetAddonData(env)->connection_constructor.New({});
  Connection* connection = Connection::Unwrap(object);
  connection->SetOwner(owner);
  connections_.emplace(connection, Napi::Persistent(object));
  clients_.insert(connection);
  std::string error = connection->InitClient(this, ssl->context(), socket_->local_address(),
                                             reinterpret_cast<sockaddr*>(&client.addresses[0]), transport_, client);
  if (!error.empty()) {
    connection->Terminate();
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_CONNECT", "cannot start a connection: " + error);
  }
  return object;
}

void Engine::OnDatagram(const uint8_t* data, size_t length, const sockaddr* remote) {
  if (closing_) return;
  ngtcp2_version_cid vc;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, data, length, kServerCidLength);
  if (rv != 0) return;  // garbage, or a version we do not speak: drop it
  auto route = routes_.find(CidKey(vc.dcid, vc.dcidlen));
  if (route != routes_.end()) {
    route->second->Receive(data, length, socket_->local_address(), remote);
    return;
  }
  if (data[0] & 0x80) {
    if (listening_) Accept(data, length, remote);
    return;
  }
  // A short-header packet no connection ID routes: a stateless reset for one of our client
  // connections, or (listening) a packet for a connection we lost in a restart, say.
  for (Connection* client : clients_) {
    if (client->ReceiveUnrouted(data, length, socket_->local_address(), remote)) return;
  }
  if (listening_) SendStatelessReset(vc.dcid, vc.dcidlen, length, remote);
}

// RFC 9000 10.3: smaller than the packet that triggered it (two endpoints can never loop, and
// nothing is amplified), and at most kResetsPerSecond per engine.
void Engine::SendStatelessReset(const uint8_t* dcid, size_t dcidlen, size_t received, const sockaddr* remote) {
  constexpr size_t kMinReset = 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN;
  constexpr size_t kMaxReset = 1200;
  constexpr uint64_t kResetsPerSecond = 100;
  if (received <= kMinReset || dcidlen == 0) return;
  uint64_t now = Now();
  if (now - reset_window_start_ >= NGTCP2_SECONDS) {
    reset_window_start_ = now;
    resets_in_window_ = 0;
  }
  if (resets_in_window_ >= kResetsPerSecond) return;
  resets_in_window_++;
  ngtcp2_stateless_reset_token token;
  if (!reset_tokens_.Generate(dcid, dcidlen, token.data)) return;
  size_t length = std::min(received - 1, kMaxReset);
  uint8_t random[kMaxReset];
  size_t random_length = length - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
  if (!RandomBytes(random, random_length)) return;
  uint8_t packet[kMaxReset];
  ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset2(packet, sizeof(packet), &token, random, random_length);
  if (n <= 0) return;
  resets_sent_++;
  SendStateless(packet, static_cast<size_t>(n), remote);
}

// Only a refused port ends connections, and only client connections still handshaking with it
// (as TCP does in SYN-SENT): ICMP is easily forged, so an established connection carries on and
// times out if its peer is really gone.
void Engine::OnDestinationError(const sockaddr* destination, int error) {
  if (closing_ || error != UV_ECONNREFUSED) return;
  for (auto& [connection, reference] : connections_) {
    if (SameAddress(connection->remote_address(), destination)) connection->OnPortUnreachable();
  }
}

// A new client's Initial. Address validation first (RFC 9000 8.1): with a token that proves the
// address, or when Retry is not called for, the caps decide; a refused client hears so at once
// (CONNECTION_CLOSE with CONNECTION_REFUSED) instead of timing out.
void Engine::Accept(const uint8_t* data, size_t length, const sockaddr* remote) {
  ngtcp2_pkt_hd header;
  if (ngtcp2_accept(&header, data, length) != 0) return;  // not an acceptable Initial: drop
  uint8_t packet[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
  ValidatedAddress validated;
  switch (validation_.Check(header, remote, &validated)) {
    case AddressValidation::Verdict::kInvalidRetryToken:
      SendStateless(packet, AddressValidation::WriteRefusal(header, NGTCP2_INVALID_TOKEN, "invalid Retry token", packet, sizeof(packet)), remote);
      return;
    case AddressValidation::Verdict::kNoToken:
      // 'auto' asks for proof only under load: a Retry costs honest clients a round trip.
      if (validation_mode_ == ValidationMode::kAlways ||
          (validation_mode_ == ValidationMode::kAuto && handshaking_.size() >= kRetryThreshold)) {
        size_t n = validation_.WriteRetry(header, remote, packet, sizeof(packet));
        if (n > 0) retries_sent_++;
        SendStateless(packet, n, remote);
        return;
      }
      break;
    case AddressValidation::Verdict::kValidated:
      break;
  }
  if (handshaking_.size() >= max_handshakes_ || servers_.size() >= max_connections_) {
    connections_refused_++;
    SendStateless(packet, AddressValidation::WriteRefusal(header, NGTCP2_CONNECTION_REFUSED, "server busy", packet, sizeof(packet)), remote);
    return;
  }
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object object = GetAddonData(env)->connection_constructor.New({});
  Connection* connection = Connection::Unwrap(object);
  connections_.emplace(connection, Napi::Persistent(object));
  servers_.insert(connection);
  handshaking_.insert(connection);
  std::string error = connection->InitServer(this, ssl_, ticket_policy_, socket_->local_address(), remote,
                                             header, validated, transport_, want_keylog_);
  if (!error.empty()) {
    connection->Terminate();
    return;
  }
  connection->Receive(data, length, socket_->local_address(), remote);
  // Garbage that merely looks like an Initial never decrypts: forget it without telling JS.
  if (!connection->peer_verified()) connection->Terminate();
}

void Engine::SendStateless(const uint8_t* packet, size_t length, const sockaddr* remote) {
  if (length > 0 && socket_) socket_->SendBatch(packet, length, length, remote);
}

// counters() -> { connections, handshakes, retriesSent, connectionsRefused, statelessResetsSent }
Napi::Value Engine::Counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("connections", static_cast<double>(servers_.size()));
  result.Set("handshakes", static_cast<double>(handshaking_.size()));
  result.Set("retriesSent", static_cast<double>(retries_sent_));
  result.Set("connectionsRefused", static_cast<double>(connections_refused_));
  result.Set("statelessResetsSent", static_cast<double>(resets_sent_));
  return result;
}

void Engine::AddConnectionId(const ngtcp2_cid& cid, Connection* connection) {
  routes_[CidKey(cid)] = connection;
}

void Engine::RemoveConnectionId(const ngtcp2_cid& cid) { routes_.erase(CidKey(cid)); }

void Engine::Forget(Connection* connection) {
  ClosePathSockets(connection, nullptr);
  dirty_.erase(connection);
  with_events_.erase(connection);
  finished_.erase(connection);
  clients_.erase(connection);
  servers_.erase(connection);
  handshaking_.erase(connection);
  // Only its own IDs: walking every route made N connections closing together cost O(N^2).
  for (const ngtcp2_cid& cid : connection->connection_ids()) {
    auto route = routes_.find(CidKey(cid));
    if (route != routes_.end() && route->second == connection) routes_.erase(route);
  }
  connections_.erase(connection);
}

void Engine::MarkDirty(Connection* connection) {
  dirty_.insert(connection);
  KeepLoopSpinning();
}

void Engine::MarkHasEvents(Connection* connection) {
  with_events_.insert(connection);
  KeepLoopSpinning();
}

// An active idle handle makes the loop poll without blocking, so the check phase comes soon.
void Engine::KeepLoopSpinning() {
  if (idle_) uv_idle_start(idle_, [](uv_idle_t*) {});
}

void Engine::SendBatch(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote) {
  if (socket_) socket_->SendBatch(data, length, segment, remote);
}

// At once, before any other callback: an exception that escaped a callback (or the ticks run
// after it) can leave Node's async-context stack unwound only part way, and Node clears it when it
// handles the exception. Another MakeCallback before that aborts the process when async hooks are
// enabled (AsyncLocalStorage, APM agents).
void Engine::ReportCallbackException(const Napi::Error& error) { napi_fatal_exception(Env(), error.Value()); }

void Engine::OnCheck(uv_check_t* check) { static_cast<Engine*>(check->data)->RunTurn(); }

// Once per loop turn: tell JS what happened, then send what is pending, then retire finished
// connections. Repeated a few times because JS may write or close from its callbacks.
void Engine::RunTurn() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object keep_alive = Value();  // JS may drop the engine from a callback
  (void)keep_alive;
  std::vector<Connection*> flushed;
  for (int round = 0; round < 4 && (!with_events_.empty() || !dirty_.empty()); round++) {
    while (!with_events_.empty()) {
      std::vector<Connection*> batch(with_events_.begin(), with_events_.end());
      with_events_.clear();
      for (Connection* connection : batch) {
        if (connections_.count(connection)) connection->DeliverEvents(env);
      }
    }
    std::vector<Connection*> batch(dirty_.begin(), dirty_.end());
    dirty_.clear();
    for (Connection* connection : batch) {
      if (connections_.count(connection) && connection->Flush()) flushed.push_back(connection);
    }
    std::vector<Connection*> released;
    for (Connection* connection : finished_) {
      if (!connection->has_events()) released.push_back(connection);
    }
    for (Connection* connection : released) connection->Terminate();
  }
  for (Connection* connection : flushed) {
    if (connections_.count(connection)) connection->EndTurn();
  }
  if (with_events_.empty() && dirty_.empty() && idle_) uv_idle_stop(idle_);
  MaybeFinishClose();
}

void Engine::Close(const Napi::CallbackInfo& info) {
  if (closing_) return;
  closing_ = true;
  listening_ = false;
  close_callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  std::vector<Connection*> open;
  for (auto& [connection, reference] : connections_) open.push_back(connection);
  for (Connection* connection : open) connection->CloseForEngineShutdown();
  // Keep the loop alive until the handles are closed and close() has resolved.
  uv_ref(reinterpret_cast<uv_handle_t*>(idle_));
  KeepLoopSpinning();
}

void Engine::MaybeFinishClose() {
  if (!closing_ || !connections_.empty() || !check_) return;
  CloseHandles();
}

// After a teardown the Engine may be freed before libuv calls back: the callbacks then only free
// the handles (handle->data is null) and never reach the Engine or JS.
void Engine::CloseHandles() {
  auto closed = [](uv_handle_t* handle) {
    auto* self = static_cast<Engine*>(handle->data);
    if (handle->type == UV_CHECK) {
      delete reinterpret_cast<uv_check_t*>(handle);
    } else {
      delete reinterpret_cast<uv_idle_t*>(handle);
    }
    if (self) self->HandleClosed();
  };
  Engine* owner = torn_down_ ? nullptr : this;
  if (check_) {
    check_->data = owner;
    uv_close(reinterpret_cast<uv_handle_t*>(check_), closed);
    check_ = nullptr;
  }
  if (idle_) {
    idle_->data = owner;
    uv_close(reinterpret_cast<uv_handle_t*>(idle_), closed);
    idle_ = nullptr;
  }
  if (socket_) {
    UdpSocket* socket = socket_;
    socket_ = nullptr;
    socket->Close(owner ? std::function<void()>([this] { HandleClosed(); }) : nullptr);
  }
  ClosePathSockets(nullptr, nullptr);
}

// When the last handle is closed, close() resolves and the engine may be collected.
void Engine::HandleClosed() {
  if (--handles_open_ > 0) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    close_callback_.MakeCallback(env.Global(), {}, *async_context_);
  } catch (const Napi::Error& error) {
    napi_fatal_exception(env, error.Value());
  }
  close_callback_.Reset();
  // Nothing native refers to JS any more: the engine and its owner can be collected.
  owner_.Reset();
  ssl_object_.Reset();
  Unref();
}

}  // namespace quicket
