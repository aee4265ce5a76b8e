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

// Thread-safe. CPU- and memory-heavy (the constructor too, which hashes once): call from worker
// threads only.
class PasswordHasher {
 public:
  explicit PasswordHasher(Argon2Params params);
  // Returns the encoded hash. kUnavailable when memory cannot be had (a 503 for clients);
  // kInvalidArgument when the parameters are outside libsodium's range (memory_kib >= 8, iterations
  // >= 1).
  absl::StatusOr<std::string> Hash(std::string_view password) const;
  // True when `password` matches `encoded`. A malformed `encoded` is false, never a crash.
  bool Verify(std::string_view encoded, std::string_view password) const;
  // True when `encoded` is not Argon2id with exactly the current parameters (weaker or
  // stronger, or Argon2i, or unreadable): after a successful Verify, store a fresh Hash.
  bool NeedsRehash(std::string_view encoded) const;
  // A valid hash of a random password, for spending the same time on unknown users. Computed
  // once by the constructor; empty only when the parameters cannot hash (Hash says why).
  const std::string& DummyHash() const { return dummy_hash_; }
  const Argon2Params& params() const { return params_; }

 private:
  Argon2Params params_;
  std::string dummy_hash_;
};

}  // namespace custos::crypto
