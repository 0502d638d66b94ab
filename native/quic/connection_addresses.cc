// Connection, a client's addresses: a name that resolved to several addresses (IPv6 and IPv4, say)
// is tried one address at a time, like net.connect's autoSelectFamily. An address that refuses
// (ICMP port unreachable) or stays silent for the attempt timeout gives way to the next, on the same
// Connection and Streams; 0-RTT bytes go out again to the new address.
#include <cstring>

#include "../engine.h"
#include "connection.h"

namespace quicket {

bool Connection::MayTryNextAddress() const {
  return !server_ && state_ == State::kHandshaking && !heard_from_peer_ && engine_ && conn_ &&
         address_index_ + 1 < client_.addresses.size();
}

uint64_t Connection::AttemptDeadline() const {
  return attempt_started_ + client_.attempt_timeout_ms * NGTCP2_MILLISECONDS;
}

bool Connection::TryNextAddress() {
  if (!MayTryNextAddress()) return false;
  // Nothing came back from this address, so there is nobody to tell: no CONNECTION_CLOSE.
  AbandonAttempt();
  const auto* next = reinterpret_cast<const sockaddr*>(&client_.addresses[++address_index_]);
  memcpy(&remote_, next, AddressLength(next));
  path_.remote.addrlen = AddressLength(next);
  attempt_started_ = Now();
  std::string error = StartClient(client_);
  if (!error.empty()) {
    events::Close info;
    info.application = false;
    info.error_code = "ERR_QUIC_CONNECT";
    info.error_message = "cannot start a connection: " + error;
    Finish(std::move(info));
    return true;
  }
  if (early_attempted_ && !retried_streams_.empty()) {
    // The same ticket allows 0-RTT here too: the streams reopen now and ride the new first flight.
    Reopen(std::move(retried_streams_), false);
    retried_streams_.clear();
  }
  return true;
}

}  // namespace quicket
