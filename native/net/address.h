// Socket addresses: IP literals parsed and printed, compared, and moved between IPv4 and the
// IPv4-mapped IPv6 form (::ffff:a.b.c.d) a dual-stack socket speaks. Connections and JS only ever
// see an IPv4 peer as IPv4; the mapped form lives between UdpSocket and the kernel.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace quicket {

// An IPv4 or IPv6 socket address in the room the larger needs (28 bytes; a sockaddr_storage is
// 128): what a connection keeps of its path, several times over.
union InetAddress {
  sockaddr sa;
  sockaddr_in in;
  sockaddr_in6 in6;
};

// Parses an IP literal and port into a sockaddr; returns false for anything else.
bool ParseAddress(const std::string& host, int port, sockaddr_storage* out);
// The IP address of an IPv4 or IPv6 socket address as text, and its port.
std::string HostOf(const sockaddr* address);
int PortOf(const sockaddr* address);
socklen_t AddressLength(const sockaddr* address);
// Same IP address and port (IPv6 flow labels and scopes aside).
bool SameAddress(const sockaddr* a, const sockaddr* b);
// An IPv4 address as ::ffff:a.b.c.d (port kept), for a send on an IPv6 socket.
void MapToIpv6(const sockaddr* v4, sockaddr_storage* out);
// An IPv4-mapped IPv6 address turned back into IPv4, in place; anything else is left alone.
void UnmapIpv4(sockaddr_storage* address);
bool IsUnspecified(const sockaddr* address);  // 0.0.0.0 or ::
bool IsLoopback(const sockaddr* address);     // 127.0.0.0/8 (also IPv4-mapped) or ::1

}  // namespace quicket
