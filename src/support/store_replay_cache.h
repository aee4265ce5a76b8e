#pragma once

// The DPoP replay cache that every `custos serve` process on one store shares: each accepted
// proof's (jkt, jti) is a row of the store's replay keys (store::SharedStateRepository), so a
// proof used on one node is refused on every other, at once. `custos serve` uses it when the
// store is PostgreSQL; with the embedded store (one process) the in-memory cache
// (MemoryDpopReplayCache, support/dpop.h) does the same without a store write per proof.
//
// Fails closed: when the store cannot answer, Remember returns the error and the verifier refuses
// the proof (a replay must never pass because the cache was away).
//
// Every Remember is one write transaction. About once per `sweep_interval` that write also
// deletes the keys of every scope that expired more than `sweep_margin` ago; the margin leaves
// rows alone that a node whose clock is behind may still need. The table holds about one row
// per proof accepted within the last max_age + sweep_interval + sweep_margin; the in-memory
// cache's entry bounds do not apply. Thread-safe.

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "store/store.h"
#include "support/dpop.h"

namespace custos::support {

struct StoreReplayCacheOptions {
  absl::Duration sweep_interval = absl::Minutes(1);
  absl::Duration sweep_margin = absl::Minutes(1);
};

class StoreDpopReplayCache final : public DpopReplayCache {
 public:
  // `scope` keeps this cache's keys apart from other caches on the same store (e.g.
  // "dpop.support", "dpop.oidc"). `store` and `clock` must outlive the cache.
  StoreDpopReplayCache(store::Store& store, const Clock& clock, std::string scope,
                       StoreReplayCacheOptions options = {});
  StoreDpopReplayCache(const StoreDpopReplayCache&) = delete;
  StoreDpopReplayCache& operator=(const StoreDpopReplayCache&) = delete;

  absl::StatusOr<std::optional<DpopError>> Remember(const std::string& jkt, const std::string& jti,
                                                    absl::Time expires) override;

 private:
  // Whether this call should sweep; claims the sweep so that one caller does it.
  bool ClaimSweep(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  store::Store& store_;
  const Clock& clock_;
  const std::string scope_;
  const StoreReplayCacheOptions options_;
  absl::Mutex mu_;
  absl::Time next_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace custos::support
