// Connection, what JS can read about it: stats() (ngtcp2's connection info and our counters),
// its addresses, and the peer's certificate. Each still answers once ngtcp2's state is gone
// (Terminate keeps the last numbers and the certificate).
#include <ngtcp2/ngtcp2.h>

#include "../common.h"
#include "connection.h"

namespace quicket {

namespace {
Napi::Number Milliseconds(Napi::Env env, ngtcp2_duration duration) {
  return Napi::Number::New(env, static_cast<double>(duration) / NGTCP2_MILLISECONDS);
}

Napi::Number Count(Napi::Env env, uint64_t value) { return Napi::Number::New(env, static_cast<double>(value)); }

Napi::Object AddressObject(Napi::Env env, const sockaddr* address) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("address", HostOf(address));
  result.Set("port", PortOf(address));
  result.Set("family", address->sa_family == AF_INET6 ? "IPv6" : "IPv4");
  return result;
}
}  // namespace

void Connection::KeepFinalState() {
  if (conn_) {
    ngtcp2_conn_get_conn_info(conn_, &final_info_);
    final_info_kept_ = true;
  }
  if (tls_) peer_certificate_ = tls_->PeerCertificateDer();
}

// stats() -> { rtt: { smoothed, min, latest, variance } (ms), congestionWindow, bytesInFlight,
// bytesSent, bytesReceived, packetsSent, packetsReceived, packetsLost, streamsOpened }
Napi::Value Connection::JsStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ngtcp2_conn_info stats{};
  if (conn_) {
    ngtcp2_conn_get_conn_info(conn_, &stats);
  } else if (final_info_kept_) {
    stats = final_info_;
  }
  Napi::Object rtt = Napi::Object::New(env);
  rtt.Set("smoothed", Milliseconds(env, stats.smoothed_rtt));
  rtt.Set("min", Milliseconds(env, stats.min_rtt == UINT64_MAX ? 0 : stats.min_rtt));
  rtt.Set("latest", Milliseconds(env, stats.latest_rtt));
  rtt.Set("variance", Milliseconds(env, stats.rttvar));
  Napi::Object result = Napi::Object::New(env);
  result.Set("rtt", rtt);
  result.Set("congestionWindow", Count(env, stats.cwnd));
  result.Set("bytesInFlight", Count(env, stats.bytes_in_flight));
  result.Set("bytesSent", Count(env, stats.bytes_sent));
  result.Set("bytesReceived", Count(env, stats.bytes_recv));
  result.Set("packetsSent", Count(env, stats.pkt_sent));
  result.Set("packetsReceived", Count(env, stats.pkt_recv));
  result.Set("packetsLost", Count(env, stats.pkt_lost));
  result.Set("streamsOpened", Count(env, streams_opened_));
  return result;
}

// addresses() -> { local: { address, port, family }, remote: { ... } }
Napi::Value Connection::JsAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("local", AddressObject(env, reinterpret_cast<const sockaddr*>(&local_)));
  result.Set("remote", AddressObject(env, reinterpret_cast<const sockaddr*>(&remote_)));
  return result;
}

// peerCertificate() -> the peer's certificate as DER bytes, or undefined if it sent none (yet).
Napi::Value Connection::JsPeerCertificate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string der = tls_ ? tls_->PeerCertificateDer() : peer_certificate_;
  if (der.empty()) return env.Undefined();
  return Napi::Buffer<char>::Copy(env, der.data(), der.size());
}

}  // namespace quicket
