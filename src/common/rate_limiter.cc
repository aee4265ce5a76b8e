#include "common/rate_limiter.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cmath>

namespace custos {
namespace {

double TokensPerSecond(const RateLimitOptions& options) {
  const double seconds = absl::ToDoubleSeconds(options.per);
  return seconds > 0 ? options.rate_per_second / seconds : options.rate_per_second;
}

}  // namespace

std::string RateLimitKeyOf(std::string_view address) {
  const std::string text(address);
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;
  char out[INET6_ADDRSTRLEN] = {};
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    return ::inet_ntop(AF_INET, &v6.s6_addr[12], out, sizeof(out)) != nullptr ? out : text;
  }
  std::fill(std::begin(v6.s6_addr) + 8, std::end(v6.s6_addr), 0);
  if (::inet_ntop(AF_INET6, &v6, out, sizeof(out)) == nullptr) return text;
  return std::string(out) + "/64";
}

RateLimiter::RateLimiter(const RateLimitOptions& options, const Clock& clock)
    : options_(options),
      clock_(clock),
      capacity_(std::max(options.burst, 1)),
      refill_time_(options.rate_per_second > 0
                       ? capacity_ / TokensPerSecond(options) * absl::Seconds(1)
                       : absl::ZeroDuration()) {}

RateLimitDecision RateLimiter::Acquire(std::string_view key) {
  RateLimitDecision d;
  d.limit = static_cast<int>(capacity_);
  if (!enabled()) {
    d.remaining = d.limit;
    return d;
  }
  const absl::Time now = clock_.Now();
  const double rate = TokensPerSecond(options_);

  absl::MutexLock lock(&mu_);
  EvictLocked(now);
  std::string k(key);
  auto it = buckets_.find(k);
  if (it == buckets_.end()) {
    if (buckets_.size() >= std::max<size_t>(options_.max_keys, 1)) {
      buckets_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(k);
    it = buckets_.emplace(std::move(k), Bucket{capacity_, now, lru_.begin()}).first;
  } else {
    Bucket& b = it->second;
    // A clock that stepped back refills nothing, rather than holding the key back until the
    // clock catches up.
    double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - b.updated));
    b.tokens = std::min(capacity_, b.tokens + elapsed * rate);
    b.updated = now;
    lru_.splice(lru_.begin(), lru_, b.lru);
  }

  Bucket& b = it->second;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    d.allowed = true;
    d.remaining = static_cast<int>(std::floor(b.tokens));
    d.reset = now + absl::Seconds((capacity_ - b.tokens) / rate);
  } else {
    d.allowed = false;
    d.remaining = 0;
    d.retry_after = absl::Seconds((1 - b.tokens) / rate);
    d.reset = now + d.retry_after;
  }
  return d;
}

size_t RateLimiter::TrackedKeys() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

void RateLimiter::EvictLocked(absl::Time now) {
  // lru_ is in order of last use, so the idle buckets are at its back.
  while (!lru_.empty()) {
    auto it = buckets_.find(lru_.back());
    if (now - it->second.updated < refill_time_) break;
    buckets_.erase(it);
    lru_.pop_back();
  }
}

}  // namespace custos
