#include "support/jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <memory>

#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "fmt/format.h"

namespace custos::support {
namespace {

constexpr size_t kP256CoordinateSize = 32;
constexpr size_t kEs256SignatureSize = 64;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The P-256 public key x||y as an OpenSSL key, or null when the point is not on the curve.
// OpenSSL's import checks only the encoding, so the explicit public check is what rejects an
// off-curve point (which would otherwise open invalid-curve attacks on the verifier).
Pkey P256Key(std::string_view x, std::string_view y) {
  std::string point;
  point.reserve(1 + x.size() + y.size());
  point.push_back('\x04');  // uncompressed point (SEC 1 2.3.3)
  point.append(x);
  point.append(y);

  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld) return nullptr;
  if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return nullptr;

  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return nullptr;
  Pkey key(raw);

  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

// JWS carries an ECDSA signature as fixed-size r||s (RFC 7518 3.4); OpenSSL wants DER.
std::string Es256SignatureToDer(std::string_view raw) {
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  if (!sig) return {};
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, kP256CoordinateSize, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + kP256CoordinateSize, kP256CoordinateSize, nullptr);
  if (r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return {};
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return {};
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool VerifyEs256(const PublicJwk& key, std::string_view signing_input, std::string_view signature) {
  if (signature.size() != kEs256SignatureSize) return false;
  Pkey pkey = P256Key(key.x, key.y);
  if (!pkey) return false;
  const std::string der = Es256SignatureToDer(signature);
  if (der.empty()) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  if (!md || EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

// A required member that must be a string.
absl::StatusOr<std::string> StringMember(const Json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return Invalid(fmt::format("jwk has no \"{}\"", name));
  if (!it->is_string()) return Invalid(fmt::format("jwk \"{}\" is not a string", name));
  return it->get<std::string>();
}

// A coordinate: strict base64url of exactly kP256CoordinateSize bytes (both key kinds use 32).
absl::StatusOr<std::string> Coordinate(const Json& jwk, const char* name) {
  absl::StatusOr<std::string> text = StringMember(jwk, name);
  if (!text.ok()) return text.status();
  std::optional<std::string> raw = crypto::Base64UrlDecode(*text);
  if (!raw || text->find('=') != std::string::npos) {
    return Invalid(fmt::format("jwk \"{}\" is not base64url without padding", name));
  }
  if (raw->size() != kP256CoordinateSize) {
    return Invalid(
        fmt::format("jwk \"{}\" is {} bytes, not {}", name, raw->size(), kP256CoordinateSize));
  }
  return *std::move(raw);
}

}  // namespace

bool HasPrivateKeyMembers(const Json& jwk) {
  static constexpr std::array<const char*, 8> kPrivate = {"d",  "p",  "q",   "dp",
                                                          "dq", "qi", "oth", "k"};
  if (!jwk.is_object()) return false;
  for (const char* name : kPrivate) {
    if (jwk.contains(name)) return true;
  }
  return false;
}

absl::StatusOr<PublicJwk> ParsePublicJwk(const Json& jwk) {
  if (!jwk.is_object()) return Invalid("jwk is not a JSON object");
  if (HasPrivateKeyMembers(jwk)) return Invalid("jwk holds a private key");
  absl::StatusOr<std::string> kty = StringMember(jwk, "kty");
  if (!kty.ok()) return kty.status();
  absl::StatusOr<std::string> crv = StringMember(jwk, "crv");
  if (!crv.ok()) return crv.status();

  PublicJwk key;
  if (*kty == "EC" && *crv == "P-256") {
    key.kind = JwkKind::kEcP256;
    absl::StatusOr<std::string> x = Coordinate(jwk, "x");
    if (!x.ok()) return x.status();
    absl::StatusOr<std::string> y = Coordinate(jwk, "y");
    if (!y.ok()) return y.status();
    if (!P256Key(*x, *y)) return Invalid("jwk is not a point on P-256");
    key.x = *std::move(x);
    key.y = *std::move(y);
  } else if (*kty == "OKP" && *crv == "Ed25519") {
    key.kind = JwkKind::kEd25519;
    absl::StatusOr<std::string> x = Coordinate(jwk, "x");
    if (!x.ok()) return x.status();
    if (jwk.contains("y")) return Invalid("jwk of kty OKP has a \"y\"");
    key.x = *std::move(x);
  } else {
    return Invalid(fmt::format(
        "jwk kty \"{}\" crv \"{}\" is not supported (EC P-256 or OKP Ed25519)", *kty, *crv));
  }
  return key;
}

std::string ThumbprintInput(const PublicJwk& key) {
  // Base64url of the raw coordinates: our decoder accepts exactly one encoding of each value, so
  // this equals what the client sent.
  switch (key.kind) {
    case JwkKind::kEcP256:
      return fmt::format(R"({{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}})",
                         crypto::Base64UrlEncode(key.x), crypto::Base64UrlEncode(key.y));
    case JwkKind::kEd25519:
      return fmt::format(R"({{"crv":"Ed25519","kty":"OKP","x":"{}"}})",
                         crypto::Base64UrlEncode(key.x));
  }
  return {};
}

std::string Thumbprint(const PublicJwk& key) {
  return crypto::Base64UrlEncode(crypto::Sha256(ThumbprintInput(key)));
}

std::string_view JwsAlgorithmFor(const PublicJwk& key) {
  return key.kind == JwkKind::kEcP256 ? "ES256" : "EdDSA";
}

bool IsAlgorithmFor(const PublicJwk& key, std::string_view alg) {
  // RFC 9864 names Ed25519 signatures "Ed25519" as well as the older "EdDSA".
  return alg == JwsAlgorithmFor(key) || (key.kind == JwkKind::kEd25519 && alg == "Ed25519");
}

bool VerifyJwsSignature(const PublicJwk& key, std::string_view alg, std::string_view signing_input,
                        std::string_view signature) {
  if (!IsAlgorithmFor(key, alg)) return false;
  switch (key.kind) {
    case JwkKind::kEcP256:
      return VerifyEs256(key, signing_input, signature);
    case JwkKind::kEd25519:
      return crypto::ed25519::Verify(key.x, signing_input, signature);
  }
  return false;
}

}  // namespace custos::support
