#include "oidc/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
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
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

constexpr size_t kEs256Half = 32;  // r and s, each a 32-byte big-endian integer in a JWS

// Reads one DER INTEGER at `p` (before `end`) as an unsigned 32-byte big-endian number into
// `out`, and advances `p`. False when it is not one: wrong tag, long length, or wider than 32
// bytes once its sign byte is dropped.
bool ReadDerUint256(const unsigned char*& p, const unsigned char* end, unsigned char* out) {
  if (end - p < 2 || p[0] != 0x02) return false;
  size_t length = p[1];
  p += 2;
  if (length == 0 || length > 0x7f || static_cast<size_t>(end - p) < length) return false;
  const unsigned char* value = p;
  p += length;
  while (length > 0 && *value == 0) {
    ++value;
    --length;
  }
  if (length > kEs256Half) return false;
  std::memset(out, 0, kEs256Half - length);
  std::memcpy(out + (kEs256Half - length), value, length);
  return true;
}

// Appends the base64url (no padding) of `in` to `out`, without the temporary strings of
// crypto::Base64UrlEncode; the output is the same.
void AppendBase64Url(std::string& out, std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const auto* data = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  const size_t start = out.size();
  out.resize(start + (n * 4 + 2) / 3);
  char* o = out.data() + start;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{data[i]} << 16;
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
  }
}

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

constexpr size_t kMaxCachedHeaders = 16;

}  // namespace

// The key is immutable once built, so that any number of threads may sign with it at once:
// OpenSSL allows concurrent use of one EVP_PKEY as long as nobody modifies it. An ES256 signature
// needs a signing context (EVP_PKEY_CTX), which one thread at a time may use; making one per
// signature (EVP_DigestSignInit: provider fetch, key export check, context set-up) cost about as
// much as the ECDSA itself, so idle contexts are kept here for reuse: at most one per thread
// signing at the same moment.
struct SigningKey::Impl {
  Pkey pkey;            // ES256: the P-256 key pair
  std::string seed;     // EdDSA: the 32-byte seed
  Json public_members;  // kty, crv, x (and y): the public JWK without kid, alg, use

  mutable absl::Mutex mu;
  // ES256 contexts initialised for EVP_PKEY_sign with pkey, not in use.
  mutable std::vector<PkeyCtx> idle_contexts ABSL_GUARDED_BY(mu);
  // base64url of the JWT header per "kid\ntyp": the same few headers head every token.
  mutable absl::flat_hash_map<std::string, std::string> headers ABSL_GUARDED_BY(mu);

  ~Impl() { OPENSSL_cleanse(seed.data(), seed.size()); }

  absl::StatusOr<PkeyCtx> TakeContext() const {
    {
      absl::MutexLock lock(&mu);
      if (!idle_contexts.empty()) {
        PkeyCtx ctx = std::move(idle_contexts.back());
        idle_contexts.pop_back();
        return ctx;
      }
    }
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1) {
      return absl::InternalError("cannot make an ES256 signing context: " + OpenSslError());
    }
    return ctx;
  }

  void ReturnContext(PkeyCtx ctx) const {
    absl::MutexLock lock(&mu);
    idle_contexts.push_back(std::move(ctx));
  }

  // ES256 (RFC 7518 3.4): ECDSA P-256 over SHA-256(input), as r||s.
  absl::StatusOr<std::string> SignEs256(std::string_view input) const {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    ASSIGN_OR_RETURN(PkeyCtx ctx, TakeContext());
    // A P-256 ECDSA-Sig-Value in DER is at most 72 bytes; 80 leaves room.
    unsigned char der[80];
    size_t der_size = sizeof der;
    if (EVP_PKEY_sign(ctx.get(), der, &der_size, digest, sizeof digest) != 1) {
      // A context that failed is not put back: its state is unknown.
      return absl::InternalError("cannot sign: " + OpenSslError());
    }
    ReturnContext(std::move(ctx));
    // OpenSSL gives SEQUENCE { INTEGER r, INTEGER s }; JWS wants r||s, 32 bytes each.
    std::string raw(2 * kEs256Half, '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    const unsigned char* p = der;
    const unsigned char* end = der + der_size;
    if (der_size < 2 || der[0] != 0x30 || der[1] > 0x7f || size_t{der[1]} + 2 != der_size) {
      return absl::InternalError("cannot decode the signature");
    }
    p += 2;
    if (!ReadDerUint256(p, end, out) || !ReadDerUint256(p, end, out + kEs256Half) || p != end) {
      return absl::InternalError("cannot decode the signature");
    }
    return raw;
  }
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

std::string SigningKey::EncodedHeader(std::string_view kid, std::string_view typ) const {
  std::string cache_key = fmt::format("{}\n{}", kid, typ);
  {
    absl::MutexLock lock(&impl_->mu);
    auto it = impl_->headers.find(cache_key);
    if (it != impl_->headers.end()) return it->second;
  }
  const Json header = {{"alg", alg_}, {"kid", std::string(kid)}, {"typ", std::string(typ)}};
  std::string encoded;
  AppendBase64Url(encoded, DumpJson(header));
  absl::MutexLock lock(&impl_->mu);
  // Bounded: a key signs under its one kid, with the three token types.
  if (impl_->headers.size() < kMaxCachedHeaders) impl_->headers.emplace(cache_key, encoded);
  return encoded;
}

absl::StatusOr<std::string> SigningKey::Sign(std::string_view signing_input) const {
  if (alg_ == kAlgEdDsa) return crypto::ed25519::Sign(impl_->seed, signing_input);

  return impl_->SignEs256(signing_input);
}

absl::StatusOr<std::string> SignJwt(const SigningKey& key, std::string_view kid,
                                    std::string_view typ, const Json& claims) {
  if (!claims.is_object()) return Invalid("JWT claims must be a JSON object");
  const std::string payload = DumpJson(claims);
  std::string jwt;
  // Header, payload and signature in base64url, two dots: no reallocation on the way.
  jwt.reserve(128 + kid.size() + typ.size() + (payload.size() * 4 + 2) / 3 + 90);
  jwt += key.EncodedHeader(kid, typ);
  jwt += '.';
  AppendBase64Url(jwt, payload);
  ASSIGN_OR_RETURN(std::string signature, key.Sign(jwt));
  jwt += '.';
  AppendBase64Url(jwt, signature);
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
