#include "reset_tokens.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>

namespace quicket {

namespace {
// The key is HMAC(secret, label): the secret also keys address tokens, and the label keeps the
// two uses apart.
constexpr char kLabel[] = "quicket stateless reset";

EVP_MAC_CTX* NewHmac(const uint8_t* key, size_t length) {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!hmac) return nullptr;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac);
  EVP_MAC_free(hmac);  // the context holds its own reference
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx, key, length, params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}
}  // namespace

ResetTokens::~ResetTokens() { EVP_MAC_CTX_free(mac_); }

bool ResetTokens::SetKey(const uint8_t* secret, size_t length) {
  EVP_MAC_CTX* derive = NewHmac(secret, length);
  uint8_t key[32];
  size_t key_length = 0;
  bool ok = derive && EVP_MAC_update(derive, reinterpret_cast<const uint8_t*>(kLabel), sizeof(kLabel) - 1) == 1 &&
            EVP_MAC_final(derive, key, &key_length, sizeof(key)) == 1;
  EVP_MAC_CTX_free(derive);
  if (!ok) return false;
  EVP_MAC_CTX_free(mac_);
  mac_ = NewHmac(key, key_length);
  OPENSSL_cleanse(key, sizeof(key));
  return mac_ != nullptr;
}

bool ResetTokens::Generate(const uint8_t* cid, size_t cid_length, uint8_t* out) const {
  if (!mac_) return false;
  uint8_t digest[32];
  size_t length = 0;
  // A null key restarts the context under the key it already has.
  if (EVP_MAC_init(mac_, nullptr, 0, nullptr) != 1 || EVP_MAC_update(mac_, cid, cid_length) != 1 ||
      EVP_MAC_final(mac_, digest, &length, sizeof(digest)) != 1 || length < kTokenLength) {
    return false;
  }
  memcpy(out, digest, kTokenLength);
  return true;
}

}  // namespace quicket
