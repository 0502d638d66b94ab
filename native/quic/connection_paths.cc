// Connection, its path (RFC 9000 9): the peer's address may change under a connection (NAT
// rebinding, a client that moved), and a client may move itself to a new local port (migrate()).
// ngtcp2 does the protocol: it validates every new path with PATH_CHALLENGE/PATH_RESPONSE and,
// while a path is unvalidated, a server sends there at most three times what it received on it
// (RFC 9000 8.1); a server whose new path fails to validate goes back to the previous one. This
// file tells JS when the path in use changed (once it is validated) and keeps local_/remote_
// (remoteAddress, localPort, ...) on it.
//
// migrate() moves at once (ngtcp2_conn_initiate_immediate_migration) rather than after the new
// path validated: while both paths carry packets, the server's PATH_RESPONSE reaches the new socket
// behind hundreds of packets the old one delivers first, and its short packet number is then
// decoded wrongly (it fails to decrypt): during a bulk transfer the validation failed. Moving at
// once leaves the old socket only the packets already in flight. If the new path does not
// validate, the connection goes back to the old one.
#include <algorithm>
#include <cstring>

#include "../engine.h"
#include "connection.h"

namespace quicket {

namespace {
void Store(const ngtcp2_addr& address, InetAddress* out) {
  *out = {};
  memcpy(out, address.addr, std::min<size_t>(address.addrlen, sizeof(*out)));
}

sockaddr_storage Widened(const InetAddress& address) {
  sockaddr_storage out{};
  memcpy(&out, &address, sizeof(address));
  return out;
}

bool SamePath(const ngtcp2_path& path, const InetAddress& local, const InetAddress& remote) {
  return SameAddress(path.local.addr, &local.sa) && SameAddress(path.remote.addr, &remote.sa);
}

ngtcp2_addr AddressOf(InetAddress* address) {
  return {&address->sa, static_cast<ngtcp2_socklen>(AddressLength(&address->sa))};
}
}  // namespace

int Connection::HandshakeConfirmed(ngtcp2_conn* conn, void* user) {
  auto* self = static_cast<Connection*>(user);
  self->confirmed_ = true;  // SyncPath starts a waiting migration
  if (!self->server_) self->ScheduleTlsRelease(Now() + 3 * ngtcp2_conn_get_pto(conn));
  return 0;
}

int Connection::BeginPathValidation(ngtcp2_conn* conn, uint32_t, const ngtcp2_path* path, const ngtcp2_path*,
                                    void* user) {
  auto* self = static_cast<Connection*>(user);
  // A server validates its peer's new address while already using it (within the 3x limit); once
  // that succeeded, ngtcp2 probes the old path too, which decides nothing. A client validates the
  // path migrate() moved it to.
  bool decides = self->server_ ? ngtcp2_path_eq(path, ngtcp2_conn_get_path2(conn)) : self->migrating_;
  if (!decides) return 0;
  self->validating_ = true;
  Store(path->local, &self->validating_local_);
  Store(path->remote, &self->validating_remote_);
  return 0;
}

int Connection::PathValidation(ngtcp2_conn*, uint32_t, const ngtcp2_path* path, const ngtcp2_path*,
                               ngtcp2_path_validation_result result, void* user) {
  auto* self = static_cast<Connection*>(user);
  if (!self->validating_ || !SamePath(*path, self->validating_local_, self->validating_remote_)) return 0;
  self->validating_ = false;
  if (result == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS) {
    self->path_validated_ = true;  // SyncPath reports it once ngtcp2 is done
  } else if (self->migrating_) {
    self->migration_failed_ = true;  // SyncPath goes back: ngtcp2 cannot be called from here
    self->Queue(events::MigrationFailed{result == NGTCP2_PATH_VALIDATION_RESULT_ABORTED
                                            ? "the migration was abandoned for another path"
                                            : "the new path did not validate: no PATH_RESPONSE from the server"});
  }
  self->migrating_ = false;
  return 0;
}

void Connection::SyncPath() {
  if (!conn_) return;
  if (migrating_ && !migration_started_ && confirmed_) StartMigration();
  if (migration_failed_) ReturnToReportedPath();
  const ngtcp2_path* current = ngtcp2_conn_get_path2(conn_);
  bool validated = path_validated_;
  path_validated_ = false;
  if (SamePath(*current, local_, remote_)) return;
  // A new path still being validated counts once its PATH_RESPONSE came; one ngtcp2 already
  // trusts (validated a moment ago, or recently in use) counts at once.
  if (!validated && validating_ && SamePath(*current, validating_local_, validating_remote_)) return;
  events::PathChange change;
  change.previous_local = Widened(local_);
  change.previous_remote = Widened(remote_);
  Store(current->local, &local_);
  Store(current->remote, &remote_);
  change.local = Widened(local_);
  change.remote = Widened(remote_);
  Queue(change);
  // A client's earlier path sockets carry nothing any more.
  if (!server_ && engine_) engine_->ClosePathSockets(this, reinterpret_cast<const sockaddr*>(&local_));
}

void Connection::StartMigration() {
  migration_started_ = true;
  ngtcp2_path path = *ngtcp2_conn_get_path2(conn_);
  path.local = AddressOf(&migration_local_);
  int rv = ngtcp2_conn_initiate_immediate_migration(conn_, &path, Now());
  if (rv == 0) {
    MarkDirty();
    return;
  }
  migrating_ = false;
  validating_ = false;
  Queue(events::MigrationFailed{rv == NGTCP2_ERR_CONN_ID_BLOCKED ? "the server has not issued a spare connection ID"
                                : rv == NGTCP2_ERR_INVALID_STATE ? "the server does not allow migration (disable_active_migration)"
                                                                 : ngtcp2_strerror(rv)});
  if (engine_) engine_->ClosePathSockets(this, reinterpret_cast<const sockaddr*>(&local_));
}

// The path JS knows is the one before the failed migration; its socket is still open.
void Connection::ReturnToReportedPath() {
  migration_failed_ = false;
  ngtcp2_path back{AddressOf(&local_), AddressOf(&remote_), nullptr};
  int rv = ngtcp2_conn_initiate_immediate_migration(conn_, &back, Now());
  if (rv == 0) {
    if (engine_) engine_->ClosePathSockets(this, reinterpret_cast<const sockaddr*>(&local_));
  } else {
    // No spare connection ID: it stays on the new path, unvalidated (no 'pathChange'); the idle
    // timeout decides whether that path works after all.
    const ngtcp2_path* current = ngtcp2_conn_get_path2(conn_);
    Store(current->local, &local_);
    Store(current->remote, &remote_);
  }
  MarkDirty();
}

// migrate() -> { address, port, family } of the new local socket. The connection moves there as
// soon as the handshake is confirmed, and JS hears PathChange once the server answered there, or
// MigrationFailed (the connection is back on its previous path).
Napi::Value Connection::JsMigrate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfFinished(env);
  auto fail = [&](const std::string& message) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_MIGRATION", message);
  };
  if (server_) fail("only a client connection can migrate");
  if (state_ != State::kEstablished || !conn_) fail("the handshake has not completed yet");
  if (migrating_) fail("a migration is already in progress");
  const sockaddr* local = nullptr;
  int rv = engine_->OpenPathSocket(this, &local);
  if (rv != 0) throw MakeSystemError(env, rv, "bind", reinterpret_cast<const sockaddr*>(&local_));
  memcpy(&migration_local_, local, AddressLength(local));
  migrating_ = true;
  migration_started_ = false;
  if (confirmed_) StartMigration();  // a failure here is reported as MigrationFailed, like later ones
  const auto* moved_to = reinterpret_cast<const sockaddr*>(&migration_local_);
  Napi::Object result = Napi::Object::New(env);
  result.Set("address", HostOf(moved_to));
  result.Set("port", PortOf(moved_to));
  result.Set("family", moved_to->sa_family == AF_INET6 ? "IPv6" : "IPv4");
  return result;
}

}  // namespace quicket
