#include "address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstring>

namespace quicket {

bool ParseAddress(const std::string& host, int port, sockaddr_storage* out) {
  memset(out, 0, sizeof(*out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (uv_ip4_addr(host.c_str(), port, v4) == 0) return true;
  return uv_ip6_addr(host.c_str(), port, v6) == 0;
}

std::string HostOf(const sockaddr* address) {
  char host[INET6_ADDRSTRLEN] = "";
  if (address->sa_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(address), host, sizeof(host));
  } else {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(address), host, sizeof(host));
  }
  return host;
}

int PortOf(const sockaddr* address) {
  return ntohs(address->sa_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(address)->sin6_port
                                              : reinterpret_cast<const sockaddr_in*>(address)->sin_port);
}

socklen_t AddressLength(const sockaddr* address) {
  return address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

bool SameAddress(const sockaddr* a, const sockaddr* b) {
  if (a->sa_family != b->sa_family || PortOf(a) != PortOf(b)) return false;
  if (a->sa_family == AF_INET6) {
    return memcmp(&reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr, &reinterpret_cast<const sockaddr_in6*>(b)->sin6_addr,
                  sizeof(in6_addr)) == 0;
  }
  return reinterpret_cast<const sockaddr_in*>(a)->sin_addr.s_addr == reinterpret_cast<const sockaddr_in*>(b)->sin_addr.s_addr;
}

void MapToIpv6(const sockaddr* v4, sockaddr_storage* out) {
  const auto* in = reinterpret_cast<const sockaddr_in*>(v4);
  memset(out, 0, sizeof(*out));
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = in->sin_port;
  v6->sin6_addr.s6_addr[10] = 0xff;
  v6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&v6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
}

void UnmapIpv4(sockaddr_storage* address) {
  if (address->ss_family != AF_INET6) return;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
  if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) return;
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = v6->sin6_port;
  memcpy(&v4.sin_addr, &v6->sin6_addr.s6_addr[12], 4);
  memset(address, 0, sizeof(*address));
  memcpy(address, &v4, sizeof(v4));
}

bool IsUnspecified(const sockaddr* address) {
  if (address->sa_family == AF_INET6) {
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
  }
  return reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr == htonl(INADDR_ANY);
}

bool IsLoopback(const sockaddr* address) {
  if (address->sa_family == AF_INET6) {
    const in6_addr& ip = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&ip) || (IN6_IS_ADDR_V4MAPPED(&ip) && ip.s6_addr[12] == 127);
  }
  return address->sa_family == AF_INET &&
         (ntohl(reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr) >> 24) == 127;
}

}  // namespace quicket
