#pragma once

// Where `custos serve` keeps the state that has to be one across every process serving a store:
// the DPoP proof and client assertion replay caches and the rate limits per client address. With
// the embedded SQLite store one process serves the data directory (serve.lock), so they stay in its
// memory, as fast as ever. With PostgreSQL several processes may serve one database, so they live
// in the store (store::SharedStateRepository): a proof used on one node is refused on the others,
// and a client's requests count against one limit whichever node they reach.
//
// Sessions, lockout counters, grants and revocations are store rows on either backend already.

#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/config.h"
#include "common/rate_limiter.h"
#include "store/store.h"
#include "support/dpop.h"

namespace custos::cli {

// Scopes of the shared state, one per limit and replay cache.
inline constexpr std::string_view kSignInLimitScope = "authn";
inline constexpr std::string_view kRefusedAuthLimitScope = "refused_auth";
inline constexpr std::string_view kSupportDpopScope = "dpop.support";
inline constexpr std::string_view kOidcDpopScope = "dpop.oidc";
inline constexpr std::string_view kOidcAssertionScope = "oidc.client_assertion";
// Accepted client assertions remembered in memory at most (beyond: assertion_cache_full).
inline constexpr size_t kMaxClientAssertions = 100'000;

// True when the configured store is PostgreSQL (store.url), which several processes may serve.
bool SharesStateThroughStore(const Config& config);

// The rate limit `scope`: a RateLimiter in memory, or, when SharesStateThroughStore, an
// http::StoreRateLimiter on `store` (fixed windows; fails open). `store` and `clock` must
// outlive it.
std::unique_ptr<RateLimit> MakeRateLimit(const Config& config, store::Store& store,
                                         const Clock& clock, std::string_view scope,
                                         const RateLimitOptions& options);

// The DPoP replay cache `scope`: a MemoryDpopReplayCache within `options`' bounds, or, when
// SharesStateThroughStore, a support::StoreDpopReplayCache on `store` (fails closed). `store`
// and `clock` must outlive it.
std::unique_ptr<support::DpopReplayCache> MakeDpopReplayCache(const Config& config,
                                                              store::Store& store,
                                                              const Clock& clock,
                                                              std::string_view scope,
                                                              const support::DpopOptions& options);

// The DPoP settings of the configuration.
support::DpopOptions DpopOptionsOf(const Config& config);

}  // namespace custos::cli
