#pragma once

// Public JSON Web Keys (RFC 7517) of the two kinds a managed device may hold, their RFC 7638
// thumbprints, and verification of JWS signatures (RFC 7515) made with them.
//
// Accepted keys:
//   {"kty":"EC","crv":"P-256","x":...,"y":...}   (RFC 7518 6.2; used with alg ES256)
//   {"kty":"OKP","crv":"Ed25519","x":...}        (RFC 8037 2; used with alg EdDSA)
// Coordinates are base64url without padding and must have their full length (32 bytes); an EC
// point must lie on the curve. A JWK with any private-key member ("d", or the RSA and symmetric
// ones) is refused, as is any other key type or curve. Other members ("kid", "use", "alg", ...)
// are allowed and ignored, as RFC 7517 4 says.
//
// All functions are pure and thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/json.h"

namespace custos::support {

enum class JwkKind {
  kEcP256,   // ECDSA over P-256, JWS alg "ES256"
  kEd25519,  // Ed25519, JWS alg "EdDSA"
};

// A validated public key. Coordinates are raw big-endian bytes (32 each); `y` is empty for
// Ed25519.
struct PublicJwk {
  JwkKind kind = JwkKind::kEcP256;
  std::string x;
  std::string y;
};

// True when `jwk` is an object with a member that only a private or symmetric key has
// ("d", "p", "q", "dp", "dq", "qi", "oth", "k").
bool HasPrivateKeyMembers(const Json& jwk);

// Parses a public JWK. kInvalidArgument, with a message saying why, for anything that is not
// one of the accepted keys above (including a private key).
absl::StatusOr<PublicJwk> ParsePublicJwk(const Json& jwk);

// The RFC 7638 thumbprint input: the required members only, in lexicographic order, no
// whitespace, e.g. {"crv":"P-256","kty":"EC","x":"...","y":"..."}.
std::string ThumbprintInput(const PublicJwk& key);

// The RFC 7638 thumbprint with SHA-256, base64url without padding (the "jkt" of RFC 9449).
std::string Thumbprint(const PublicJwk& key);

// The JWS "alg" that goes with the key: "ES256" or "EdDSA".
std::string_view JwsAlgorithmFor(const PublicJwk& key);

// True when `alg` names signatures by `key`: "ES256" for P-256, "EdDSA" or its fully specified
// name "Ed25519" (RFC 9864) for Ed25519.
bool IsAlgorithmFor(const PublicJwk& key, std::string_view alg);

// True only when `signature` (raw, as carried in a JWS: r||s of 64 bytes for ES256, 64 bytes for
// EdDSA) is a valid signature of `signing_input` by `key` under `alg`. An `alg` that does not go
// with the key (IsAlgorithmFor), or a signature of the wrong size, gives false.
bool VerifyJwsSignature(const PublicJwk& key, std::string_view alg, std::string_view signing_input,
                        std::string_view signature);

}  // namespace custos::support
