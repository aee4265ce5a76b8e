#include "support/store_replay_cache.h"

#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace custos::support {

StoreDpopReplayCache::StoreDpopReplayCache(store::Store& store, const Clock& clock,
                                           std::string scope, StoreReplayCacheOptions options)
    : store_(store), clock_(clock), scope_(std::move(scope)), options_(options) {}

absl::StatusOr<std::optional<DpopError>> StoreDpopReplayCache::Remember(const std::string& jkt,
                                                                        const std::string& jti,
                                                                        absl::Time expires) {
  const absl::Time now = clock_.Now();
  const bool sweep = ClaimSweep(now);
  // A thumbprint is base64url, so the first ':' ends it whatever the jti holds.
  const std::string key = fmt::format("{}:{}", jkt, jti);
  bool first = false;
  const absl::Status status = store_.Write([&](store::Transaction& tx) -> absl::Status {
    if (sweep) {
      RETURN_IF_ERROR(tx.SharedState().DeleteExpiredKeys(now - options_.sweep_margin).status());
    }
    ASSIGN_OR_RETURN(first, tx.SharedState().Remember(scope_, key, expires, now));
    return absl::OkStatus();
  });
  // The caller refuses the proof on this error: fail closed.
  RETURN_IF_ERROR(status);
  if (!first) return DpopError::kReplayed;
  return std::nullopt;
}

bool StoreDpopReplayCache::ClaimSweep(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (now < next_sweep_) return false;
  next_sweep_ = now + options_.sweep_interval;
  return true;
}

}  // namespace custos::support
