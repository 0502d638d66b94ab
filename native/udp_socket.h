// UdpSocket: the engine's uv_udp_t on Node's own loop. Heap-allocated and freed by its own close
// callback, because libuv needs the handle's memory until then.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace quicket {

class UdpSocket {
 public:
  class Receiver {
   public:
    virtual ~Receiver() = default;
    virtual void OnDatagram(const uint8_t* data, size_t length, const sockaddr* remote) = 0;
  };

  UdpSocket(uv_loop_t* loop, Receiver* receiver);
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Returns 0 or a libuv error code.
  int Bind(const sockaddr* address, bool reuse_port);
  int Start();
  const sockaddr* local_address() const { return reinterpret_cast<const sockaddr*>(&local_); }
  // Sends without queueing when the kernel takes it; copies and queues on EAGAIN.
  void Send(const uint8_t* data, size_t length, const sockaddr* remote);
  // Sends `length` bytes of back-to-back packets of `segment` bytes (the last may be shorter) in
  // one system call with UDP GSO where the kernel has it, else one packet at a time.
  void SendBatch(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote);
  // Closes the handle; `this` is deleted once libuv is done with it, then `done` runs.
  void Close(std::function<void()> done);
  void SetRef(bool ref);

 private:
  ~UdpSocket() = default;
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnReceive(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                        unsigned flags);

  void SendEach(const uint8_t* data, size_t length, size_t segment, const sockaddr* remote);

  uv_udp_t handle_;
  bool gso_ = true;  // cleared the first time the kernel refuses UDP_SEGMENT
  Receiver* receiver_;
  sockaddr_storage local_{};
  bool bound_ = false;
  std::function<void()> on_closed_;
  // One receive buffer per socket, big enough for libuv's recvmmsg batch; datagrams are processed
  // before the next batch is read.
  std::unique_ptr<uint8_t[]> receive_buffer_;
};

}  // namespace quicket
