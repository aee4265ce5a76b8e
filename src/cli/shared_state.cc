#include "cli/shared_state.h"

#include "http/store_rate_limiter.h"
#include "store/postgres/postgres_store.h"
#include "support/store_replay_cache.h"

namespace custos::cli {

bool SharesStateThroughStore(const Config& config) {
  return store::IsPostgresUrl(config.store_url);
}

std::unique_ptr<RateLimit> MakeRateLimit(const Config& config, store::Store& store,
                                         const Clock& clock, std::string_view scope,
                                         const RateLimitOptions& options) {
  if (SharesStateThroughStore(config)) {
    return std::make_unique<http::StoreRateLimiter>(store, clock, std::string(scope), options);
  }
  return std::make_unique<RateLimiter>(options, clock);
}

std::unique_ptr<support::DpopReplayCache> MakeDpopReplayCache(const Config& config,
                                                              store::Store& store,
                                                              const Clock& clock,
                                                              std::string_view scope,
                                                              const support::DpopOptions& options) {
  if (SharesStateThroughStore(config)) {
    return std::make_unique<support::StoreDpopReplayCache>(store, clock, std::string(scope));
  }
  return std::make_unique<support::MemoryDpopReplayCache>(clock, options);
}

support::DpopOptions DpopOptionsOf(const Config& config) {
  return support::DpopOptions{.max_age = config.dpop_max_age,
                              .max_clock_skew = config.dpop_max_age};
}

}  // namespace custos::cli
