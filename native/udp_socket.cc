#include "udp_socket.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

socklen_t AddressLength(const sockaddr* address) {
  return address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}
}  // namespace

UdpSocket::UdpSocket(uv_loop_t* loop, Receiver* receiver)
    : loop_(loop), receiver_(receiver), receive_buffer_(new uint8_t[kReceiveBufferSize]) {
  poll_.data = this;
}

int UdpSocket::Bind(const sockaddr* address, bool reuse_port) {
  fd_ = socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return uv_translate_sys_error(errno);
  int one = 1;
  // SO_REUSEPORT lets several processes share one port; the kernel spreads flows among them.
  if (reuse_port && setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return uv_translate_sys_error(errno);
  }
  // Bursts at QUIC speeds overflow the default socket buffers; larger ones avoid needless loss.
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
  setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
  // GRO: the kernel may hand over several same-sized datagrams at once (split again below).
  setsockopt(fd_, SOL_UDP, UDP_GRO, &one, sizeof(one));
  if (bind(fd_, address, AddressLength(address)) != 0) return uv_translate_sys_error(errno);
  socklen_t length = sizeof(local_);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local_), &length) != 0) return uv_translate_sys_error(errno);
  return uv_poll_init_socket(loop_, &poll_, fd_);
}

int UdpSocket::Start() { return uv_poll_start(&poll_, UV_READABLE, OnPoll); }

void UdpSocket::SetRef(bool ref) {
  if (poll_.type != UV_POLL) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(&poll_);
  ref ? uv_ref(handle) : uv_unref(handle);
}

void UdpSocket::Watch() {
  uv_poll_start(&poll_, pending_.empty() ? UV_READABLE : UV_READABLE | UV_WRITABLE, OnPoll);
}

void UdpSocket::OnPoll(uv_poll_t* poll, int status, int events) {
  auto* self = static_cast<UdpSocket*>(poll->data);
  if (status < 0) return;
  if (events & UV_WRITABLE) self->FlushPending();
  if (events & UV_READABLE) self->Receive();
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
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained; other errors (ICMP-reported) are not fatal for UDP
    }
    size_t segment = static_cast<size_t>(n);
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_UDP && header->cmsg_type == UDP_GRO) {
        int size;
        memcpy(&size, CMSG_DATA(header), sizeof(size));
        if (size > 0) segment = static_cast<size_t>(size);
      }
    }
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
  iovec iov{const_cast<uint8_t*>(data), length};
  msghdr message{};
  message.msg_name = const_cast<sockaddr*>(remote);
  message.msg_namelen = AddressLength(remote);
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
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
  while (sendmsg(fd_, &message, 0) < 0) {
    if (errno == EINTR) continue;
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
