#include "oidc/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstdint>
#include <limits>
#include <utility>

#include "common/status_macros.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/p256.h"
#include "fmt/format.h"
#include "support/jws.h"

namespace custos::oidc {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct Pkcs8Free {
  void operator()(PKCS8_PRIV_KEY_INFO* p) const { PKCS8_PRIV_KEY_INFO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The OpenSSL error queue is per thread; a failure we report must not leave entries behind for
// an unrelated later caller on this thread to misread.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

absl::StatusOr<Json> Es256PublicMembers(EVP_PKEY* pkey) {
  ASSIGN_OR_RETURN(crypto::p256::Coordinates point, crypto::p256::PublicCoordinates(pkey));
  return Json{{"kty", "EC"},
              {"crv", "P-256"},
              {"x", crypto::Base64UrlEncode(point.x)},
              {"y", crypto::Base64UrlEncode(point.y)}};
}

// Wipes a secret held in a std::string when it leaves scope.
class Scrubbed {
 public:
  explicit Scrubbed(std::string& text) : text_(text) {}
  Scrubbed(const Scrubbed&) = delete;
  Scrubbed& operator=(const Scrubbed&) = delete;
  ~Scrubbed() { OPENSSL_cleanse(text_.data(), text_.size()); }

 private:
  std::string& text_;
};

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

}  // namespace

// Immutable once built, so that any number of threads may sign with it at once: OpenSSL allows
// concurrent use of one EVP_PKEY as long as nobody modifies it, and each Sign call makes its own
// EVP_MD_CTX.
struct SigningKey::Impl {
  Pkey pkey;            // ES256: the P-256 key pair
  std::string seed;     // EdDSA: the 32-byte seed
  Json public_members;  // kty, crv, x (and y): the public JWK without kid, alg, use

  ~Impl() { OPENSSL_cleanse(seed.data(), seed.size()); }
};

SigningKey::SigningKey(std::string alg, std::shared_ptr<const Impl> impl)
    : alg_(std::move(alg)), impl_(std::move(impl)) {}

absl::StatusOr<SigningKey> SigningKey::Generate(std::string_view alg) {
  if (alg == kAlgEs256) {
    Pkey pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!pkey) return absl::InternalError("cannot generate a P-256 key: " + OpenSslError());
    auto impl = std::make_shared<Impl>();
    ASSIGN_OR_RETURN(impl->public_members, Es256PublicMembers(pkey.get()));
    impl->pkey = std::move(pkey);
    return SigningKey(std::string(kAlgEs256), std::move(impl));
  }
  if (alg == kAlgEdDsa) {
    std::string seed(crypto::ed25519::kSeedSize, '\0');
    const Scrubbed scrub(seed);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(seed.data()), static_cast<int>(seed.size())) !=
        1) {
      return absl::InternalError("cannot generate an Ed25519 key: " + OpenSslError());
    }
    return FromPrivateBytes(kAlgEdDsa, seed);
  }
  return Invalid(fmt::format("unsupported signing algorithm \"{}\" (ES256 or EdDSA)", alg));
}

absl::StatusOr<SigningKey> SigningKey::FromPrivateBytes(std::string_view alg,
                                                        std::string_view bytes) {
  if (alg == kAlgEs256) {
    // PKCS#8 only, and all of it: a trailing byte or another encoding is not what we sealed.
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, Pkcs8Free> info(
        d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(bytes.size())));
    if (!info || p != reinterpret_cast<const unsigned char*>(bytes.data()) + bytes.size()) {
      ERR_clear_error();
      return Invalid("ES256 private key bytes are not PKCS#8 DER");
    }
    Pkey pkey(EVP_PKCS82PKEY(info.get()));
    if (!pkey || !crypto::p256::IsP256(pkey.get())) {
      ERR_clear_error();
      return Invalid("ES256 private key bytes do not hold a P-256 key");
    }
    auto impl = std::make_shared<Impl>();
    ASSIGN_OR_RETURN(impl->public_members, Es256PublicMembers(pkey.get()));
    impl->pkey = std::move(pkey);
    return SigningKey(std::string(kAlgEs256), std::move(impl));
  }
  if (alg == kAlgEdDsa) {
    if (bytes.size() != crypto::ed25519::kSeedSize) {
      return Invalid("EdDSA private key bytes must be a 32-byte seed");
    }
    ASSIGN_OR_RETURN(std::string public_key, crypto::ed25519::PublicKeyFromSeed(bytes));
    auto impl = std::make_shared<Impl>();
    impl->seed = std::string(bytes);
    impl->public_members =
        Json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", crypto::Base64UrlEncode(public_key)}};
    return SigningKey(std::string(kAlgEdDsa), std::move(impl));
  }
  return Invalid(fmt::format("unsupported signing algorithm \"{}\" (ES256 or EdDSA)", alg));
}

std::string SigningKey::PrivateBytes() const {
  if (alg_ == kAlgEdDsa) return impl_->seed;
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, Pkcs8Free> info(EVP_PKEY2PKCS8(impl_->pkey.get()));
  if (!info) {
    ERR_clear_error();
    return {};
  }
  unsigned char* der = nullptr;
  const int length = i2d_PKCS8_PRIV_KEY_INFO(info.get(), &der);
  if (length <= 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_clear_free(der, static_cast<size_t>(length));
  return out;
}

Json SigningKey::PublicJwk(std::string_view kid) const {
  Json jwk = impl_->public_members;
  jwk["kid"] = std::string(kid);
  jwk["alg"] = alg_;
  jwk["use"] = "sig";
  return jwk;
}

absl::StatusOr<std::string> SigningKey::Sign(std::string_view signing_input) const {
  if (alg_ == kAlgEdDsa) return crypto::ed25519::Sign(impl_->seed, signing_input);

  return crypto::p256::SignEs256(impl_->pkey.get(), signing_input);
}

absl::StatusOr<std::string> SignJwt(const SigningKey& key, std::string_view kid,
                                    std::string_view typ, const Json& claims) {
  if (!claims.is_object()) return Invalid("JWT claims must be a JSON object");
  const Json header = {{"alg", key.alg()}, {"kid", std::string(kid)}, {"typ", std::string(typ)}};
  std::string jwt = crypto::Base64UrlEncode(DumpJson(header));
  jwt += '.';
  jwt += crypto::Base64UrlEncode(DumpJson(claims));
  ASSIGN_OR_RETURN(std::string signature, key.Sign(jwt));
  jwt += '.';
  jwt += crypto::Base64UrlEncode(signature);
  return jwt;
}

absl::StatusOr<VerifiedJwt> VerifyJwt(std::string_view jwt, const KeyLookup& lookup) {
  std::optional<support::CompactJwsParts> parts = support::SplitCompactJws(jwt);
  if (!parts) return Invalid("JWT is not three base64url parts separated by dots");
  std::optional<Json> header = support::DecodeJwsObject(parts->header);
  if (!header) return Invalid("JWT header is not base64url of a JSON object");

  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) return Invalid("JWT header has no \"alg\"");
  const std::string& alg_name = alg->get_ref<const std::string&>();
  // Only the asymmetric algorithms we sign with: "none" and the MACs (whose "key" a public JWK
  // would become, the classic algorithm confusion) never reach a key lookup.
  if (alg_name != kAlgEs256 && alg_name != kAlgEdDsa && alg_name != "Ed25519") {
    return Invalid("JWT alg is not allowed (ES256 or EdDSA)");
  }
  // RFC 7515 4.1.11: extensions we do not understand make the JWS invalid, and we understand
  // none (e.g. "b64":false of RFC 7797 would change what the signature covers).
  if (header->contains("crit")) return Invalid("JWT header has \"crit\" extensions");

  std::optional<Json> claims = support::DecodeJwsObject(parts->payload);
  if (!claims) return Invalid("JWT claims are not base64url of a JSON object");
  std::optional<std::string> signature = crypto::Base64UrlDecode(parts->signature);
  if (!signature) return Invalid("JWT signature is not base64url");

  absl::StatusOr<support::PublicJwk> key = lookup(*header);
  if (absl::IsNotFound(key.status())) return Invalid("no key is known for the JWT's kid");
  if (!key.ok()) return key.status();
  if (!support::VerifyJwsSignature(*key, alg_name, parts->signing_input, *signature)) {
    return Invalid("JWT signature is not valid");
  }
  return VerifiedJwt{.header = *std::move(header), .claims = *std::move(claims)};
}

namespace {

// A NumericDate claim (RFC 7519 2: seconds since the epoch, fractions allowed). nullopt when
// absent; kInvalidArgument when it is not a number.
absl::StatusOr<std::optional<absl::Time>> NumericDate(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::optional<absl::Time>();
  if (!it->is_number()) return Invalid(fmt::format("JWT \"{}\" is not a number", name));
  if (it->is_number_unsigned()) {
    const uint64_t seconds = it->get<uint64_t>();
    if (seconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::optional<absl::Time>(absl::InfiniteFuture());
    }
    return std::optional<absl::Time>(absl::FromUnixSeconds(static_cast<int64_t>(seconds)));
  }
  if (it->is_number_integer()) {
    return std::optional<absl::Time>(absl::FromUnixSeconds(it->get<int64_t>()));
  }
  // absl::Seconds(double) saturates to an infinite duration instead of overflowing.
  return std::optional<absl::Time>(absl::UnixEpoch() + absl::Seconds(it->get<double>()));
}

}  // namespace

absl::Status CheckTimes(const Json& claims, absl::Time now, absl::Duration leeway,
                        bool require_exp) {
  if (!claims.is_object()) return Invalid("JWT claims are not a JSON object");
  ASSIGN_OR_RETURN(std::optional<absl::Time> exp, NumericDate(claims, "exp"));
  ASSIGN_OR_RETURN(std::optional<absl::Time> nbf, NumericDate(claims, "nbf"));
  ASSIGN_OR_RETURN(std::optional<absl::Time> iat, NumericDate(claims, "iat"));
  // RFC 7519 4.1.4: the token must not be accepted "on or after" exp.
  if (!exp.has_value()) {
    if (require_exp) return Invalid("JWT has no \"exp\"");
  } else if (now - leeway >= *exp) {
    return Invalid("JWT has expired");
  }
  // RFC 7519 4.1.5: nor before nbf.
  if (nbf.has_value() && now + leeway < *nbf) return Invalid("JWT is not valid yet (nbf)");
  if (iat.has_value() && *iat > now + leeway) return Invalid("JWT was issued in the future (iat)");
  return absl::OkStatus();
}

}  // namespace custos::oidc
