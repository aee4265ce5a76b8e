#pragma once

// ECDSA over P-256 as JOSE uses it (JWS alg ES256, RFC 7518 3.4; JWK kty EC crv P-256): the
// key checks, public coordinates and raw r||s signatures shared by the device keys of the
// support plane and the token signing keys of the OpenID Connect provider. Thread-safe: a key
// may sign from many threads at once.

#include <string>
#include <string_view>

#include <openssl/evp.h>

#include "absl/status/statusor.h"

namespace custos::crypto::p256 {

// Bytes of one coordinate, and of an r||s signature.
inline constexpr size_t kCoordinateSize = 32;
inline constexpr size_t kSignatureSize = 64;

// True when `pkey` is an EC key on P-256.
bool IsP256(EVP_PKEY* pkey);

// The public point's x and y, 32 big-endian bytes each.
struct Coordinates {
  std::string x;
  std::string y;
};
absl::StatusOr<Coordinates> PublicCoordinates(EVP_PKEY* pkey);

// The ES256 signature of `input` (SHA-256, ECDSA) as JWS wants it: r||s, 32 bytes each.
absl::StatusOr<std::string> SignEs256(EVP_PKEY* pkey, std::string_view input);

}  // namespace custos::crypto::p256
