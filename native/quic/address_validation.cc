#include "address_validation.h"

#include <ngtcp2/ngtcp2_crypto.h>

#include <chrono>
#include <cstring>

#include "../net/address.h"
#include "../tls/crypto.h"

namespace quicket {

namespace {
constexpr size_t kRetryCidLength = 18;  // the engine routes server connection IDs of this length

// Wall-clock nanoseconds: tokens travel between processes and restarts, like tickets.
ngtcp2_tstamp TokenTime() {
  return static_cast<ngtcp2_tstamp>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

ngtcp2_socklen LengthOf(const sockaddr* address) { return static_cast<ngtcp2_socklen>(AddressLength(address)); }
}  // namespace

// Separate from the reset key's own use: a token never reveals anything about reset tokens.
void AddressValidation::SetKey(const uint8_t* key, size_t length) {
  std::string derived = Sha256("quicket address validation\n" + std::string(reinterpret_cast<const char*>(key), length));
  memcpy(secret_, derived.data(), kSecretLength);
}

AddressValidation::Verdict AddressValidation::Check(const ngtcp2_pkt_hd& initial, const sockaddr* remote,
                                                    ValidatedAddress* out) const {
  if (initial.tokenlen == 0) return Verdict::kNoToken;
  ngtcp2_tstamp now = TokenTime();
  if (initial.token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY2) {
    int rv = ngtcp2_crypto_verify_retry_token2(&out->original_dcid, initial.token, initial.tokenlen, secret_,
                                               kSecretLength, initial.version, remote, LengthOf(remote), &initial.dcid,
                                               retry_token_lifetime_ms_ * NGTCP2_MILLISECONDS, now);
    if (rv != 0) return Verdict::kInvalidRetryToken;
    out->retried = true;
    out->token_type = NGTCP2_TOKEN_TYPE_RETRY;
    return Verdict::kValidated;
  }
  if (initial.token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR &&
      ngtcp2_crypto_verify_regular_token(initial.token, initial.tokenlen, secret_, kSecretLength, remote,
                                         LengthOf(remote), new_token_lifetime_ms_ * NGTCP2_MILLISECONDS, now) == 0) {
    out->token_type = NGTCP2_TOKEN_TYPE_NEW_TOKEN;
    return Verdict::kValidated;
  }
  return Verdict::kNoToken;
}

size_t AddressValidation::WriteRetry(const ngtcp2_pkt_hd& initial, const sockaddr* remote, uint8_t* packet,
                                     size_t capacity) const {
  ngtcp2_cid retry_scid;
  retry_scid.datalen = kRetryCidLength;
  if (!RandomBytes(retry_scid.data, retry_scid.datalen)) return 0;
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN2];
  ngtcp2_ssize token_length = ngtcp2_crypto_generate_retry_token2(
      token, secret_, kSecretLength, initial.version, remote, LengthOf(remote), &retry_scid, &initial.dcid, TokenTime());
  if (token_length < 0) return 0;
  ngtcp2_ssize n = ngtcp2_crypto_write_retry(packet, capacity, initial.version, &initial.scid, &retry_scid,
                                             &initial.dcid, token, static_cast<size_t>(token_length));
  return n > 0 ? static_cast<size_t>(n) : 0;
}

std::string AddressValidation::MakeNewToken(const sockaddr* remote) const {
  uint8_t token[NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN];
  ngtcp2_ssize n = ngtcp2_crypto_generate_regular_token(token, secret_, kSecretLength, remote, LengthOf(remote), TokenTime());
  return n > 0 ? std::string(reinterpret_cast<char*>(token), static_cast<size_t>(n)) : std::string();
}

size_t AddressValidation::WriteRefusal(const ngtcp2_pkt_hd& initial, uint64_t error_code, const std::string& reason,
                                       uint8_t* packet, size_t capacity) {
  ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(packet, capacity, initial.version, &initial.scid, &initial.dcid,
                                                        error_code, reinterpret_cast<const uint8_t*>(reason.data()),
                                                        reason.size());
  return n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace quicket
