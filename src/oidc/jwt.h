#pragma once

// JSON Web Tokens signed by Custos (RFC 7519 with JWS compact serialisation, RFC 7515): ID
// tokens, RFC 9068 access tokens and logout tokens, signed with a tenant's ES256 (P-256) or EdDSA
// (Ed25519) key; and verification of JWTs against public JWKs (client assertions of
// private_key_jwt, id_token_hint, our own access tokens at introspection).
//
// Thread-safe: a SigningKey may sign from many threads at once.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "support/jwk.h"

namespace custos::oidc {

inline constexpr std::string_view kAlgEs256 = "ES256";
inline constexpr std::string_view kAlgEdDsa = "EdDSA";

// A private signing key held in memory.
class SigningKey {
 public:
  // A fresh key for `alg` (kAlgEs256 or kAlgEdDsa; kInvalidArgument otherwise), from OpenSSL's
  // random generator.
  static absl::StatusOr<SigningKey> Generate(std::string_view alg);
  // The key from PrivateBytes(). kInvalidArgument when they are not a key for `alg`.
  static absl::StatusOr<SigningKey> FromPrivateBytes(std::string_view alg, std::string_view bytes);

  // The private key as bytes to seal at rest: PKCS#8 DER for ES256, the 32-byte seed for EdDSA.
  // A secret: never log it.
  std::string PrivateBytes() const;
  // The public JWK with "kid", "alg" and "use":"sig".
  Json PublicJwk(std::string_view kid) const;
  const std::string& alg() const { return alg_; }

  // The raw JWS signature of `signing_input` (r||s, 64 bytes, for ES256; 64 bytes for EdDSA).
  absl::StatusOr<std::string> Sign(std::string_view signing_input) const;

  // base64url of the JWS header {"alg", "kid", "typ"} as SignJwt writes it (kept per kid and typ
  // after the first call, since every token of a key starts with the same few headers).
  std::string EncodedHeader(std::string_view kid, std::string_view typ) const;

 private:
  struct Impl;
  SigningKey(std::string alg, std::shared_ptr<const Impl> impl);
  std::string alg_;
  std::shared_ptr<const Impl> impl_;
};

// Signs `claims` as a compact JWT with header {"alg", "kid", "typ"} (typ "JWT" for ID tokens,
// "at+jwt" for RFC 9068 access tokens, "logout+jwt" for logout tokens).
absl::StatusOr<std::string> SignJwt(const SigningKey& key, std::string_view kid,
                                    std::string_view typ, const Json& claims);

struct VerifiedJwt {
  Json header;
  Json claims;
};

// Finds the public key for a JWT's header (by "kid" and "alg"); kNotFound when there is none.
using KeyLookup = std::function<absl::StatusOr<support::PublicJwk>(const Json& header)>;

// Verifies a compact JWS JWT: three base64url parts, header alg ES256 or EdDSA (never "none" or
// a MAC), a signature valid under the key `lookup` returns, claims a JSON object. Time claims
// are the caller's to check (CheckTimes). kInvalidArgument naming the problem; never echoes key
// material.
absl::StatusOr<VerifiedJwt> VerifyJwt(std::string_view jwt, const KeyLookup& lookup);

// Checks exp (required when `require_exp`), nbf and iat against `now` with `leeway`.
absl::Status CheckTimes(const Json& claims, absl::Time now, absl::Duration leeway,
                        bool require_exp);

}  // namespace custos::oidc
