#pragma once

// Password hashing with Argon2id (libsodium crypto_pwhash, parallelism 1). The encoded form
// ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>") carries its own parameters, so hashes
// made with older settings still verify after the settings change.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace custos::crypto {

struct Argon2Params {
  int64_t memory_kib = 19456;
  int iterations = 2;
};

// Thread-safe. CPU- and memory-heavy: call from worker threads only.
class PasswordHasher {
 public:
  explicit PasswordHasher(Argon2Params params);
  // Returns the encoded hash. kResourceExhausted when memory cannot be had.
  absl::StatusOr<std::string> Hash(std::string_view password) const;
  // True when `password` matches `encoded`. A malformed `encoded` is false, never a crash.
  bool Verify(std::string_view encoded, std::string_view password) const;
  // True when `encoded` was made with weaker parameters than the current ones.
  bool NeedsRehash(std::string_view encoded) const;
  // A valid hash of a random password, for spending the same time on unknown users.
  const std::string& DummyHash() const { return dummy_hash_; }
  const Argon2Params& params() const { return params_; }

 private:
  Argon2Params params_;
  std::string dummy_hash_;
};

}  // namespace custos::crypto
