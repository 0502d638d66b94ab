#include "udp_socket.h"

#include "address.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

// GSO, GRO and the ICMP error queue: Linux only. QUICKET_PORTABLE_SOCKETS builds the fallback on
// Linux too, so the code paths macOS takes are tested here.
#if defined(__linux__) && !defined(QUICKET_PORTABLE_SOCKETS)
#define QUICKET_LINUX_SOCKETS 1
#include <linux/errqueue.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace quicket {

namespace {
constexpr size_t kReceiveBufferSize = 65536;
// Datagrams read per readable event before other handles get their turn.
constexpr int kMaxReadsPerEvent = 64;
constexpr int kSocketBufferSize = 4 * 1024 * 1024;
// Bytes waiting for the socket to become writable before further packets are dropped (QUIC
// retransmits them; unbounded queueing would only hide congestion).
constexpr size_t kMaxPendingBytes = 4 * 1024 * 1024;

#ifdef QUICKET_LINUX_SOCKETS
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
// With SO_SELECT_ERR_QUEUE a queued ICMP error raises POLLPRI (UV_PRIORITIZED).
constexpr int kPollEvents = UV_READABLE | UV_PRIORITIZED;
constexpr bool kLinuxSockets = true;
#else
constexpr int kPollEvents = UV_READABLE;
constexpr bool kLinuxSockets = false;
#endif
// Only Linux spreads datagrams among SO_REUSEPORT sockets by flow; BSD and macOS hand them all to
// one socket, which would starve the other workers of a cluster.
#ifdef __linux__
constexpr bool kBalancedReusePort = true;
#else
constexpr bool kBalancedReusePort = false;
#endif

int OpenNonBlocking(int family) {
#ifdef SOCK_NONBLOCK
  return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) return fd;
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
#endif
}

// Whether a failed send may have failed for an earlier datagram: with IP_RECVERR the kernel hands
// an ICMP error it received (ECONNREFUSED, EHOSTUNREACH, ...) to the next send, which it then
// does not send.
bool MayBeReportedError(int error) {
  return error != EAGAIN && error != EWOULDBLOCK && error != ENOBUFS && error != EINTR;
}
}  // namespace

UdpSocket::Features UdpSocket::features() { return {kLinuxSockets, kLinuxSockets, kLinuxSockets, kBalancedReusePort}; }

UdpSocket::UdpSocket(uv_loop_t* loop, Receiver* receiver)
    : loop_(loop), receiver_(receiver), gso_(kLinuxSockets), receive_buffer_(new uint8_t[kReceiveBufferSize]) {
  poll_.data = this;
}

int UdpSocket::Bind(const sockaddr* address, bool reuse_port, bool ipv6_only) {
  if (reuse_port && !kBalancedReusePort) return UV_ENOTSUP;
  fd_ = OpenNonBlocking(address->sa_family);
  if (fd_ < 0) return uv_translate_sys_error(errno);
  int one = 1;
  if (address->sa_family == AF_INET6) {
    // Node's `::` is dual-stack (net and dgram alike); ipv6Only opts out.
    int only = ipv6_only ? 1 : 0;
    if (setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only)) != 0 && !ipv6_only) only = 1;
    dual_stack_ = only == 0 && IsUnspecified(address);
  }
  // SO_REUSEPORT lets several processes share one port; the kernel spreads flows among them.
  if (reuse_port && setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return uv_translate_sys_error(errno);
  }
  // Bursts at QUIC speeds overflow the default socket buffers; larger ones avoid needless loss.
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
  setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
#ifdef QUICKET_LINUX_SOCKETS
  // GRO: the kernel may hand over several same-sized datagrams at once (split again below).
  setsockopt(fd_, SOL_UDP, UDP_GRO, &one, sizeof(one));
  // ICMP errors (a closed port answers "port unreachable") go to the error queue with the
  // destination they concern; IP_RECVERR on an IPv6 socket covers its IPv4-mapped peers. With
  // SO_SELECT_ERR_QUEUE a queued error raises POLLPRI beside POLLERR: on POLLERR alone libuv
  // would stop the poll handle as if the socket were dead.
  if (address->sa_family == AF_INET6) setsockopt(fd_, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one));
  setsockopt(fd_, SOL_IP, IP_RECVERR, &one, sizeof(one));
  setsockopt(fd_, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &one, sizeof(one));
#endif
  if (bind(fd_, address, AddressLength(address)) != 0) return uv_translate_sys_error(errno);
  socklen_t length = sizeof(local_);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local_), &length) != 0) return uv_translate_sys_error(errno);
  return uv_poll_init_socket(loop_, &poll_, fd_);
}

int UdpSocket::Start() { return uv_poll_start(&poll_, kPollEvents, OnPoll); }

bool UdpSocket::CanReach(const sockaddr* remote) const {
  return remote->sa_family == local_.ss_family || (dual_stack_ && remote->sa_family == AF_INET);
}

void UdpSocket::SetRef(bool ref) {
  if (poll_.type != UV_POLL) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(&poll_);
  ref ? uv_ref(handle) : uv_unref(handle);
}

void UdpSocket::Watch() {
  uv_poll_start(&poll_, kPollEvents | (pending_.empty() ? 0 : UV_WRITABLE), OnPoll);
}

void UdpSocket::OnPoll(uv_poll_t* poll, int status, int events) {
  auto* self = static_cast<UdpSocket*>(poll->data);
  if (status < 0) {
    // libuv stopped the handle for a POLLERR without POLLPRI: a socket error the kernel set without
    // queueing it. A UDP socket lives on: clear the error and watch again.
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &error, &length);
    self->ReadErrors();
    self->Watch();
    return;
  }
  // Errors first: the queue must be drained, or epoll reports it again on every turn.
  if (events & UV_PRIORITIZED) self->ReadErrors();
  if (events & UV_WRITABLE) self->FlushPending();
  if (events & UV_READABLE) self->Receive();
}

void UdpSocket::ReadErrors() {
#ifdef QUICKET_LINUX_SOCKETS
  for (int i = 0; i < kMaxReadsPerEvent && fd_ >= 0; i++) {
    sockaddr_storage destination{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(sock_extended_err) + sizeof(sockaddr_in6))];
    msghdr message{};  // no iovec: the returned datagram's payload is not needed
    message.msg_name = &destination;
    message.msg_namelen = sizeof(destination);
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    if (recvmsg(fd_, &message, MSG_ERRQUEUE) < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
      bool extended = (header->cmsg_level == SOL_IP && header->cmsg_type == IP_RECVERR) ||
                      (header->cmsg_level == SOL_IPV6 && header->cmsg_type == IPV6_RECVERR);
      if (!extended) continue;
      sock_extended_err error;
      memcpy(&error, CMSG_DATA(header), sizeof(error));
      // Local errors (a datagram over the path MTU, ...) concern no peer.
      bool from_network = error.ee_origin == SO_EE_ORIGIN_ICMP || error.ee_origin == SO_EE_ORIGIN_ICMP6;
      if (from_network && message.msg_namelen > 0 && error.ee_errno != 0) {
        UnmapIpv4(&destination);
        receiver_->OnDestinationError(reinterpret_cast<sockaddr*>(&destination),
                                      uv_translate_sys_error(static_cast<int>(error.ee_errno)));
      }
    }
  }
#endif
}

void UdpSocket::Receive() {
  sockaddr_storage remote;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  for (int i = 0; i < kMaxReadsPerEvent && fd_ >= 0; i++) {
    iovec iov{receive_buffer_.get(), kReceiveBufferSize};
    msghdr message{};
    message.msg_name = &remote;
    message.msg_namelen = sizeof(remote);
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_, &message, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // drained
      continue;  // an ICMP-reported error fails one read (ReadErrors() reports it); datagrams wait behind it
    }
    size_t segment = static_cast<size_t>(n);
#ifdef QUICKET_LINUX_SOCKETS
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_UDP && header->cmsg_type == UDP_GRO) {
        int size;
        memcpy(&size, CMSG_DATA(header), sizeof(size));
        if (size > 0) segment = static_cast<size_t>(size);
      }
    }
#endif
    UnmapIpv4(&remote);
    const uint8_t* data = receive_buffer_.get();
    for (size_t offset = 0; offset < static_cast<size_t>(n) && fd_ >= 0; offset += segment) {
      receiver_->OnDatagram(data + offset, std::min(segment, static_cast<size_t>(n) - offset),
                            reinterpret_cast<sockaddr*>(&remote));
    }
  }
}

int UdpSocket::Transmit(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote) {
  if (length > segment && !gso_) {
    for (size_t offset = 0; offset < length; offset += segment) {
      int error = Transmit(data + offset, std::min(segment, length - offset), segment, remote);
      if (error != 0) return error;
    }
    return 0;
  }
  sockaddr_storage mapped;
  if (remote->sa_family == AF_INET && local_.ss_family == AF_INET6) {
    MapToIpv6(remote, &mapped);
    remote = reinterpret_cast<const sockaddr*>(&mapped);
  }
  iovec iov{const_cast<uint8_t*>(data), length};
  msghdr message{};
  message.msg_name = const_cast<sockaddr*>(remote);
  message.msg_namelen = AddressLength(remote);
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
#ifdef QUICKET_LINUX_SOCKETS
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  if (length > segment) {
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_UDP;
    header->cmsg_type = UDP_SEGMENT;
    header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t size = static_cast<uint16_t>(segment);
    memcpy(CMSG_DATA(header), &size, sizeof(size));
  }
#endif
  bool retried = false;
  while (sendmsg(fd_, &message, 0) < 0) {
    if (errno == EINTR) continue;
    if (!retried && MayBeReportedError(errno)) {
      retried = true;  // the error, if it was an earlier datagram's, is consumed: this one goes out now
      continue;
    }
    if (length > segment && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
      gso_ = false;  // this kernel or device cannot segment: one packet per call from now on
      return Transmit(data, length, segment, remote);
    }
    return errno;
  }
  return 0;
}

void UdpSocket::SendBatch(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote) {
  if (fd_ < 0) return;
  // Keep the order of packets: while some wait, new ones wait behind them.
  if (pending_.empty()) {
    int error = Transmit(data, length, segment, remote);
    if (error != EAGAIN && error != EWOULDBLOCK && error != ENOBUFS) return;  // sent, or lost like on a network
  }
  Queue(data, length, segment, remote);
}

void UdpSocket::Queue(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote) {
  if (pending_bytes_ + length > kMaxPendingBytes) return;
  Pending pending{std::vector<uint8_t>(data, data + length), segment, {}};
  memcpy(&pending.remote, remote, AddressLength(remote));
  pending_.push_back(std::move(pending));
  pending_bytes_ += length;
  Watch();
}

void UdpSocket::FlushPending() {
  while (!pending_.empty()) {
    Pending& next = pending_.front();
    int error = Transmit(next.data.data(), next.data.size(), next.segment, reinterpret_cast<sockaddr*>(&next.remote));
    if (error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS) break;
    pending_bytes_ -= next.data.size();
    pending_.pop_front();
  }
  Watch();
}

void UdpSocket::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  auto finish = [](uv_handle_t* handle) {
    auto* self = static_cast<UdpSocket*>(handle->data);
    if (self->fd_ >= 0) close(self->fd_);
    std::function<void()> done = std::move(self->on_closed_);
    delete self;
    if (done) done();
  };
  if (poll_.type == UV_POLL) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), finish);
  } else {
    finish(reinterpret_cast<uv_handle_t*>(&poll_));  // Bind() failed before the handle existed
  }
}

}  // namespace quicket
