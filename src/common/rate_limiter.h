#pragma once

// Rate limits per key (the server keys them by client IP address): the RateLimit interface that
// callers hold, and RateLimiter, a token bucket per key in this process's memory. A limit that
// several processes share lives in the store (http/store_rate_limiter.h); `custos serve` picks
// that one when the store is PostgreSQL.
//
// RateLimiter: a token-bucket rate limit per key, in memory.
//
// Each key has a bucket of `burst` tokens that refills at `rate_per_second`; a request takes
// one token, and is refused while the bucket holds less than one. A key seen for the first time
// starts with a full bucket.
//
// Memory is bounded: a bucket that has been idle long enough to be full again is forgotten
// (a fresh one would be identical), and at most `max_keys` buckets are kept; beyond that the
// least recently used one is dropped, which at worst gives that key a full bucket again.
//
//   RateLimiter limiter({.rate_per_second = 10, .burst = 20}, SystemClock::Get());
//   RateLimitDecision d = limiter.Acquire(remote_ip);
//   if (!d.allowed) ... answer 429, Retry-After: d.retry_after ...
//
// Thread-safe.

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace custos {

// The key that limits one client: its address as text, except that an IPv6 client is keyed by
// its /64 prefix ("2001:db8:1:2::/64"), the block a single site or host is usually given (else
// each of its 2^64 addresses would get its own bucket), and an IPv4-mapped IPv6 address by its
// IPv4 form. Text that is not an address is its own key.
std::string RateLimitKeyOf(std::string_view address);

struct RateLimitOptions {
  int rate_per_second = 0;  // 0 (or less) turns the limiter off: every request is allowed
  int burst = 1;            // bucket size; values below 1 count as 1
  // The time `rate_per_second` tokens take to come back: 1 s by default; one minute makes the
  // rate per minute.
  absl::Duration per = absl::Seconds(1);
  size_t max_keys = 100'000;
};

struct RateLimitDecision {
  bool allowed = true;
  int limit = 0;      // the bucket size (X-Rate-Limit-Limit)
  int remaining = 0;  // whole tokens left after this request (X-Rate-Limit-Remaining)
  // When refused: when the next request of this key can be allowed. When allowed: when the
  // bucket is full again. (X-Rate-Limit-Reset, in epoch seconds rounded up.)
  absl::Time reset = absl::InfinitePast();
  // When refused: how long to wait before the next request can be allowed; zero when allowed.
  absl::Duration retry_after = absl::ZeroDuration();
};

// A rate limit per key. Implementations are thread-safe.
class RateLimit {
 public:
  virtual ~RateLimit() = default;
  // False when the limit is off (every request is allowed).
  virtual bool enabled() const = 0;
  // Counts one request of `key` and says whether it is allowed. Always allowed when off.
  virtual RateLimitDecision Acquire(std::string_view key) = 0;
  // Whether Acquire may wait on I/O (a store), so that a caller on an event loop calls it
  // elsewhere.
  virtual bool blocking() const { return false; }
};

class RateLimiter final : public RateLimit {
 public:
  // `clock` must outlive the limiter.
  RateLimiter(const RateLimitOptions& options, const Clock& clock);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  bool enabled() const override { return options_.rate_per_second > 0; }

  // Takes a token for `key` if one is there. Always allowed when the limiter is off.
  RateLimitDecision Acquire(std::string_view key) override;

  // Buckets currently kept (for tests and metrics).
  size_t TrackedKeys() const;

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
    std::list<std::string>::iterator lru;  // position in lru_
  };

  // Forgets buckets that are full again by `now`, and least recently used ones beyond the cap.
  void EvictLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RateLimitOptions options_;
  const Clock& clock_;
  const double capacity_;
  // Time for an empty bucket to fill up: a bucket idle this long equals a fresh one.
  const absl::Duration refill_time_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  // Keys, most recently used first.
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
};

}  // namespace custos
