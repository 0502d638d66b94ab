// Engine, the sockets of migrated client connections: connection.migrate() moves a client
// connection to a new local port, which needs a socket of its own beside the engine's one. Each
// is bound to the engine socket's address on a new port, routes by connection ID like the engine's
// socket (only to its own connection; it never accepts), leaves the loop's lifetime to the
// engine's socket, and closes when its connection moves on again, ends, or the engine closes.
#include <ngtcp2/ngtcp2.h>

#include <cstring>

#include "engine.h"

namespace quicket {

namespace {
// The length of the connection IDs we issue (connection.cc), needed to parse a short header.
constexpr size_t kOwnCidLength = 18;

void ClearPort(sockaddr_storage* address) {
  if (address->ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(address)->sin6_port = 0;
  } else {
    reinterpret_cast<sockaddr_in*>(address)->sin_port = 0;
  }
}
}  // namespace

void PathSocket::OnDatagram(const uint8_t* data, size_t length, const sockaddr* remote) {
  engine_->ReceiveOnPath(this, data, length, remote);
}

int Engine::OpenPathSocket(Connection* owner, const sockaddr** local) {
  if (closing_ || !socket_) return UV_EBADF;
  sockaddr_storage address{};
  memcpy(&address, socket_->local_address(), AddressLength(socket_->local_address()));
  ClearPort(&address);
  auto* path = new PathSocket(this, owner);
  path->socket_ = new UdpSocket(loop_, path);
  bool ipv6_only = address.ss_family == AF_INET6 && !socket_->dual_stack();
  int rv = path->socket_->Bind(reinterpret_cast<sockaddr*>(&address), false, ipv6_only);
  if (rv == 0) rv = path->socket_->Start();
  if (rv != 0) {
    path->socket_->Close([path] { delete path; });
    return rv;
  }
  // Only the engine's own socket keeps the loop alive (engine.ref()/unref()).
  path->socket_->SetRef(false);
  handles_open_++;
  path_sockets_.push_back(path);
  *local = path->socket_->local_address();
  return 0;
}

void Engine::ClosePathSockets(Connection* owner, const sockaddr* keep) {
  for (auto it = path_sockets_.begin(); it != path_sockets_.end();) {
    PathSocket* path = *it;
    if ((owner && path->owner_ != owner) || (keep && SameAddress(path->socket_->local_address(), keep))) {
      ++it;
      continue;
    }
    it = path_sockets_.erase(it);
    path->closed_ = true;
    // After a teardown the Engine may be gone when libuv calls back: then only the socket is freed.
    Engine* engine = torn_down_ ? nullptr : this;
    path->socket_->Close([path, engine] {
      delete path;
      if (engine) engine->HandleClosed();
    });
  }
}

void Engine::ReceiveOnPath(PathSocket* path, const uint8_t* data, size_t length, const sockaddr* remote) {
  if (closing_ || path->closed_) return;
  ngtcp2_version_cid vc;
  if (ngtcp2_pkt_decode_version_cid(&vc, data, length, kOwnCidLength) != 0) return;
  auto route = routes_.find(CidKey(vc.dcid, vc.dcidlen));
  if (route != routes_.end()) {
    if (route->second == path->owner_) path->owner_->Receive(data, length, path->socket_->local_address(), remote);
    return;
  }
  // No connection ID of ours: maybe a stateless reset from the server (ngtcp2 checks its token).
  if (!(data[0] & 0x80)) path->owner_->ReceiveUnrouted(data, length, path->socket_->local_address(), remote);
}

void Engine::SendOnPath(const uint8_t* data, size_t length, size_t segment, const ngtcp2_path& path) {
  if (socket_ && (path_sockets_.empty() || SameAddress(socket_->local_address(), path.local.addr))) {
    socket_->SendBatch(data, length, segment, path.remote.addr);
    return;
  }
  for (PathSocket* candidate : path_sockets_) {
    if (SameAddress(candidate->socket_->local_address(), path.local.addr)) {
      candidate->socket_->SendBatch(data, length, segment, path.remote.addr);
      return;
    }
  }
  // A path whose socket was closed (the connection moved on): nothing can leave from there.
}

}  // namespace quicket
