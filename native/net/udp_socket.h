// UdpSocket: the engine's UDP socket on Node's own loop, read and written directly (a uv_poll_t
// watches it) so that both UDP GSO on send and UDP GRO on receive can be used: one system call
// moves up to 64 KiB of QUIC packets in either direction. ICMP errors the kernel receives about
// sent datagrams (IP_RECVERR) are read from the socket's error queue and reported to the receiver.
// Those three are Linux's; elsewhere (or built with QUICKET_PORTABLE_SOCKETS) packets go one per
// system call and ICMP errors are not seen. An IPv6 socket bound to `::` is dual-stack: IPv4 peers
// come and go as IPv4 addresses, mapped to ::ffff:a.b.c.d only on their way to the kernel.
// Heap-allocated and freed by its own close callback, because libuv needs the handle's memory
// until then.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

namespace quicket {

class UdpSocket {
 public:
  class Receiver {
   public:
    virtual ~Receiver() = default;
    virtual void OnDatagram(const uint8_t* data, size_t length, const sockaddr* remote) = 0;
    // An ICMP error about a datagram sent to `destination`; `error` is a libuv error code
    // (UV_ECONNREFUSED: port unreachable). Anyone on the path can forge one.
    virtual void OnDestinationError(const sockaddr* destination, int error) = 0;
  };

  UdpSocket(uv_loop_t* loop, Receiver* receiver);
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // What this build's sockets can do (the `socketFeatures` export).
  struct Features {
    bool gso, gro, icmp_errors, reuse_port;
  };
  static Features features();

  // Returns 0 or a libuv error code (UV_ENOTSUP: reuse_port where the kernel does not balance).
  // An IPv6 `address` of `::` also serves IPv4 unless ipv6_only.
  int Bind(const sockaddr* address, bool reuse_port, bool ipv6_only = false);
  // Whether a datagram to `remote` can leave this socket (its family, or IPv4 on a dual-stack one).
  bool CanReach(const sockaddr* remote) const;
  bool dual_stack() const { return dual_stack_; }
  int Start();
  // Whether the open socket keeps Node's loop alive (like a node:dgram socket's ref()/unref()).
  void SetRef(bool ref);
  const sockaddr* local_address() const { return reinterpret_cast<const sockaddr*>(&local_); }
  // Sends `length` bytes of back-to-back packets of `segment` bytes (the last may be shorter) in
  // one system call with UDP GSO where the kernel has it, else one packet at a time. What the
  // kernel cannot take now is copied and sent when the socket is writable again.
  void SendBatch(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote);
  // Closes the socket; `this` is deleted once libuv is done with it, then `done` runs.
  void Close(std::function<void()> done);

 private:
  struct Pending {
    std::vector<uint8_t> data;
    size_t segment;
    sockaddr_storage remote;
  };

  ~UdpSocket() = default;
  static void OnPoll(uv_poll_t* poll, int status, int events);
  void Receive();
  void ReadErrors();
  // Returns 0, or the errno that stopped the send (EAGAIN: try again when writable).
  int Transmit(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote);
  void Queue(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote);
  void FlushPending();
  void Watch();

  uv_loop_t* loop_;
  uv_poll_t poll_{};  // type stays UV_UNKNOWN_HANDLE until Bind() initialises it
  int fd_ = -1;
  Receiver* receiver_;
  sockaddr_storage local_{};
  bool gso_;  // cleared the first time the kernel refuses UDP_SEGMENT
  bool dual_stack_ = false;
  std::deque<Pending> pending_;
  size_t pending_bytes_ = 0;
  std::function<void()> on_closed_;
  std::unique_ptr<uint8_t[]> receive_buffer_;
};

}  // namespace quicket
