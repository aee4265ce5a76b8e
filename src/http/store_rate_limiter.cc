#include "http/store_rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/statusor.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace custos::http {
namespace {

double RequestsPerSecond(const RateLimitOptions& options) {
  const double seconds = absl::ToDoubleSeconds(options.per);
  return seconds > 0 ? options.rate_per_second / seconds : options.rate_per_second;
}

int64_t LimitOf(const RateLimitOptions& options) {
  if (options.rate_per_second <= 0) return std::max(options.burst, 1);
  return std::max<int64_t>(std::max(options.burst, 1),
                           static_cast<int64_t>(std::ceil(RequestsPerSecond(options))));
}

absl::Duration WindowOf(const RateLimitOptions& options) {
  if (options.rate_per_second <= 0) return absl::Seconds(1);
  // Whole microseconds, as the store keeps times; never empty.
  const int64_t micros = static_cast<int64_t>(
      std::ceil(static_cast<double>(LimitOf(options)) / RequestsPerSecond(options) * 1e6));
  return absl::Microseconds(std::max<int64_t>(micros, 1));
}

}  // namespace

StoreRateLimiter::StoreRateLimiter(store::Store& store, const Clock& clock, std::string scope,
                                   const RateLimitOptions& options,
                                   StoreRateLimitOptions store_options)
    : store_(store),
      clock_(clock),
      scope_(std::move(scope)),
      store_options_(store_options),
      enabled_(options.rate_per_second > 0),
      limit_(LimitOf(options)),
      window_(WindowOf(options)) {}

RateLimitDecision StoreRateLimiter::Acquire(std::string_view key) {
  RateLimitDecision d;
  d.limit = static_cast<int>(limit_);
  if (!enabled_) {
    d.remaining = d.limit;
    return d;
  }
  const absl::Time now = clock_.Now();
  const int64_t window_us = absl::ToInt64Microseconds(window_);
  const int64_t now_us = absl::ToUnixMicros(now);
  // Floor division, also before the epoch.
  const int64_t index = now_us / window_us - (now_us % window_us < 0 ? 1 : 0);
  const absl::Time start = absl::FromUnixMicros(index * window_us);
  const absl::Time end = start + window_;
  const bool sweep = ClaimSweep(now);

  int64_t count = 0;
  const absl::Status status = store_.Write([&](store::Transaction& tx) -> absl::Status {
    if (sweep) {
      RETURN_IF_ERROR(
          tx.SharedState().DeleteEndedWindows(now - store_options_.sweep_margin).status());
    }
    ASSIGN_OR_RETURN(count, tx.SharedState().Count(scope_, key, start, end, 1));
    return absl::OkStatus();
  });
  if (!status.ok()) {
    // Fail open: see the header. The request goes on as if this were its first in the window.
    Log(LogLevel::kWarn, "rate limit not counted: the store did not answer; request allowed",
        {{"scope", scope_}, {"error", std::string(status.message())}});
    d.remaining = d.limit - 1;
    d.reset = end;
    return d;
  }
  d.allowed = count <= limit_;
  d.remaining = static_cast<int>(std::max<int64_t>(0, limit_ - count));
  d.reset = end;
  if (!d.allowed) d.retry_after = end - now;
  return d;
}

bool StoreRateLimiter::ClaimSweep(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (now < next_sweep_) return false;
  next_sweep_ = now + store_options_.sweep_interval;
  return true;
}

}  // namespace custos::http
