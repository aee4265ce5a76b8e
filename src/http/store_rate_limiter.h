#pragma once

// A rate limit that every `custos serve` process on one store shares: requests are counted in
// fixed windows in the store (store::SharedStateRepository::Count), so a client address has one
// limit whichever node it reaches. `custos serve` uses it when the store is PostgreSQL; with the
// embedded store (one process) the in-memory token bucket (RateLimiter, common/rate_limiter.h)
// does the same without a store write per request.
//
// The token bucket of RateLimitOptions becomes fixed windows of `limit` requests, where
//   limit  = max(burst, rate per second rounded up)
//   window = limit / rate
// (for the default sign-in limit, 20 requests per 2 s; for the default refused-credential limit,
// 20 per 20 s). Windows start at whole multiples of their length since the Unix epoch, so every
// node agrees on them, to within clock skew. As with any fixed window, a client can get up to
// twice the limit through around a window's end; the average rate holds.
//
// Fails open: when the store cannot count (it is unavailable, say), the request is allowed and a
// warning logged. The limit guards against floods and is not what keeps an account safe (the
// lockout counters in the store are); refusing every request while the counter is away would
// make a store hiccup an outage of sign-in.
//
// Every Acquire is one write transaction (blocking() is true: the HTTP server asks it on a worker
// thread). About once per `sweep_interval` that write also deletes the counts of every scope
// whose window ended more than `sweep_margin` ago. Thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/rate_limiter.h"
#include "store/store.h"

namespace custos::http {

struct StoreRateLimitOptions {
  absl::Duration sweep_interval = absl::Minutes(1);
  absl::Duration sweep_margin = absl::Minutes(1);
};

class StoreRateLimiter final : public RateLimit {
 public:
  // `scope` keeps this limit's counts apart from other limits on the same store (e.g. "authn").
  // `store` and `clock` must outlive the limiter.
  StoreRateLimiter(store::Store& store, const Clock& clock, std::string scope,
                   const RateLimitOptions& options, StoreRateLimitOptions store_options = {});
  StoreRateLimiter(const StoreRateLimiter&) = delete;
  StoreRateLimiter& operator=(const StoreRateLimiter&) = delete;

  bool enabled() const override { return enabled_; }
  RateLimitDecision Acquire(std::string_view key) override;
  bool blocking() const override { return true; }

  // The fixed windows that stand for the options' bucket (see above).
  int64_t limit() const { return limit_; }
  absl::Duration window() const { return window_; }

 private:
  // Whether this call should sweep; claims the sweep so that one caller does it.
  bool ClaimSweep(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  store::Store& store_;
  const Clock& clock_;
  const std::string scope_;
  const StoreRateLimitOptions store_options_;
  const bool enabled_;
  const int64_t limit_;
  const absl::Duration window_;
  absl::Mutex mu_;
  absl::Time next_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace custos::http
