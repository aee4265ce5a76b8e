#pragma once

// Ed25519 (RFC 8032) key generation, signing and verification, backed by libsodium.
//
// A private key is held as its 32-byte seed (what RFC 8032 calls the secret key); the public key
// is derived from it. All byte strings are raw (not encoded). All functions are thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/random.h"

namespace custos::crypto::ed25519 {

inline constexpr size_t kSeedSize = 32;
inline constexpr size_t kPublicKeySize = 32;
inline constexpr size_t kSignatureSize = 64;

// A new private key: kSeedSize bytes from `random`.
std::string GenerateSeed(Random& random);

// The public key of `seed`. kInvalidArgument unless seed is kSeedSize bytes.
absl::StatusOr<std::string> PublicKeyFromSeed(std::string_view seed);

// The kSignatureSize-byte signature of `message` by `seed` (deterministic, as RFC 8032 defines).
// kInvalidArgument unless seed is kSeedSize bytes.
absl::StatusOr<std::string> Sign(std::string_view seed, std::string_view message);

// True only when `signature` is a valid signature of `message` by `public_key`. Wrong sizes give
// false.
bool Verify(std::string_view public_key, std::string_view message, std::string_view signature);

}  // namespace custos::crypto::ed25519
