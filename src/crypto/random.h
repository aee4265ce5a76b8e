#pragma once

// Random source, injected so tests can be deterministic. The system source draws from the
// kernel CSPRNG (libsodium randombytes_buf).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace custos::crypto {

// Thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(void* out, size_t n) = 0;

  std::string Bytes(size_t n);
  // A URL-safe token of `n_bytes` random bytes, base64url without padding.
  std::string Token(size_t n_bytes = 32);
  // An Okta-style id: `prefix` then 17 base62 characters (~101 bits).
  std::string Id(std::string_view prefix);
  // An RFC 4122 version 4 UUID in lower-case text form.
  std::string Uuid();
  // An RFC 9562 version 7 UUID: the Unix time of `when` in milliseconds in the first 48 bits,
  // then 74 random bits. UUIDs made later sort later, so an index of them grows at its end.
  std::string UuidV7(absl::Time when);
};

// The process-wide kernel-backed source. Thread-safe.
Random& SystemRandom();

// A reproducible source for tests (ChaCha20 keystream from a seed). The same seed and the same
// sequence of calls give the same output. Not for secrets. Thread-safe.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed);
  void Fill(void* out, size_t n) override;

 private:
  unsigned char key_[32];
  absl::Mutex mu_;
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;  // ChaCha20 nonce of the next Fill.
};

}  // namespace custos::crypto
