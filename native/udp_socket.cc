#include "udp_socket.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace quicket {

namespace {
// libuv's recvmmsg reads up to 20 datagrams, each into its own 64 KiB slot.
constexpr size_t kReceiveSlots = 20;
constexpr size_t kReceiveSlotSize = 65536;
constexpr int kSocketBufferSize = 4 * 1024 * 1024;

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

struct QueuedSend {
  uv_udp_send_t request;
  uint8_t data[1];
};
}  // namespace

UdpSocket::UdpSocket(uv_loop_t* loop, Receiver* receiver)
    : receiver_(receiver), receive_buffer_(new uint8_t[kReceiveSlots * kReceiveSlotSize]) {
  uv_udp_init_ex(loop, &handle_, AF_UNSPEC | UV_UDP_RECVMMSG);
  handle_.data = this;
}

int UdpSocket::Bind(const sockaddr* address, bool reuse_port) {
  int fd = socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  int one = 1;
  // Bursts at QUIC speeds overflow the default socket buffers; larger ones avoid needless loss.
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
  // SO_REUSEPORT lets several processes share one port; the kernel spreads flows among them.
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    int error = uv_translate_sys_error(errno);
    close(fd);
    return error;
  }
  int rv = uv_udp_open(&handle_, fd);
  if (rv != 0) {
    close(fd);
    return rv;
  }
  if ((rv = uv_udp_bind(&handle_, address, 0)) != 0) return rv;
  int length = sizeof(local_);
  if ((rv = uv_udp_getsockname(&handle_, reinterpret_cast<sockaddr*>(&local_), &length)) != 0) return rv;
  bound_ = true;
  return 0;
}

int UdpSocket::Start() { return uv_udp_recv_start(&handle_, OnAlloc, OnReceive); }

void UdpSocket::OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<UdpSocket*>(handle->data);
  *buf = uv_buf_init(reinterpret_cast<char*>(self->receive_buffer_.get()), kReceiveSlots * kReceiveSlotSize);
}

void UdpSocket::OnReceive(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                          unsigned flags) {
  auto* self = static_cast<UdpSocket*>(handle->data);
  if (nread <= 0 || addr == nullptr || (flags & UV_UDP_PARTIAL)) return;
  self->receiver_->OnDatagram(reinterpret_cast<const uint8_t*>(buf->base), nread, addr);
}

void UdpSocket::Send(const uint8_t* data, size_t length, const sockaddr* remote) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data)), length);
  int rv = uv_udp_try_send(&handle_, &buf, 1, remote);
  if (rv >= 0 || (rv != UV_EAGAIN && rv != UV_ENOBUFS)) return;  // other errors: QUIC recovers lost packets
  auto* queued = static_cast<QueuedSend*>(malloc(sizeof(QueuedSend) + length));
  memcpy(queued->data, data, length);
  buf = uv_buf_init(reinterpret_cast<char*>(queued->data), length);
  if (uv_udp_send(&queued->request, &handle_, &buf, 1, remote,
                  [](uv_udp_send_t* request, int) { free(request); }) != 0) {
    free(queued);
  }
}

void UdpSocket::SendBatch(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote) {
  if (length <= segment || !gso_) {
    SendEach(data, length, segment, remote);
    return;
  }
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&handle_), &fd) != 0) return;
  iovec iov{const_cast<uint8_t*>(data), length};
  msghdr message{};
  message.msg_name = const_cast<sockaddr*>(remote);
  message.msg_namelen = remote->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_UDP;
  header->cmsg_type = UDP_SEGMENT;
  header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t size = static_cast<uint16_t>(segment);
  memcpy(CMSG_DATA(header), &size, sizeof(size));
  ssize_t sent;
  do {
    sent = sendmsg(fd, &message, 0);
  } while (sent < 0 && errno == EINTR);
  if (sent >= 0) return;
  if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP) gso_ = false;
  // Refused (no GSO) or the socket buffer is full: per-packet sends queue what cannot go now.
  SendEach(data, length, segment, remote);
}

void UdpSocket::SendEach(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote) {
  for (size_t offset = 0; offset < length; offset += segment) {
    Send(data + offset, std::min(segment, length - offset), remote);
  }
}

void UdpSocket::SetRef(bool ref) {
  if (ref) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&handle_));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(&handle_));
  }
}

void UdpSocket::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), [](uv_handle_t* handle) {
    auto* self = static_cast<UdpSocket*>(handle->data);
    std::function<void()> done = std::move(self->on_closed_);
    delete self;
    if (done) done();
  });
}

}  // namespace quicket
