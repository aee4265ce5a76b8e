#include "crypto/p256.h"

#include <memory>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

namespace custos::crypto::p256 {
namespace {

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

absl::StatusOr<std::string> Coordinate(EVP_PKEY* pkey, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) {
    return absl::InternalError("cannot read the public key: " + OpenSslError());
  }
  std::unique_ptr<BIGNUM, BnFree> bn(raw);
  std::string out(kCoordinateSize, '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), kCoordinateSize) !=
      static_cast<int>(kCoordinateSize)) {
    return absl::InternalError("public key coordinate does not fit 32 bytes");
  }
  return out;
}

}  // namespace

bool IsP256(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "EC") != 1) return false;
  char group[64] = {0};
  size_t length = 0;
  if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &length) != 1) return false;
  return std::string_view(group, length) == SN_X9_62_prime256v1;
}

absl::StatusOr<Coordinates> PublicCoordinates(EVP_PKEY* pkey) {
  absl::StatusOr<std::string> x = Coordinate(pkey, OSSL_PKEY_PARAM_EC_PUB_X);
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = Coordinate(pkey, OSSL_PKEY_PARAM_EC_PUB_Y);
  if (!y.ok()) return y.status();
  return Coordinates{.x = *std::move(x), .y = *std::move(y)};
}

absl::StatusOr<std::string> SignEs256(EVP_PKEY* pkey, std::string_view input) {
  // A fresh context per call keeps one key usable from many threads.
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  // A P-256 ECDSA-Sig-Value in DER is at most 72 bytes; 80 leaves room.
  unsigned char der[80];
  size_t der_size = sizeof der;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, pkey) != 1 ||
      EVP_DigestSign(md.get(), der, &der_size, data, input.size()) != 1) {
    return absl::InternalError("cannot sign: " + OpenSslError());
  }
  // OpenSSL gives a DER ECDSA-Sig-Value; JWS (RFC 7518 3.4) wants r||s, each 32 bytes.
  const unsigned char* p = der;
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_size)));
  if (!sig) return absl::InternalError("cannot decode the signature: " + OpenSslError());
  std::string raw(kSignatureSize, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, kCoordinateSize) !=
          static_cast<int>(kCoordinateSize) ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + kCoordinateSize, kCoordinateSize) !=
          static_cast<int>(kCoordinateSize)) {
    return absl::InternalError("signature does not fit 64 bytes");
  }
  return raw;
}

}  // namespace custos::crypto::p256
