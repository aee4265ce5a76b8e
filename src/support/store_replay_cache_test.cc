#include "support/store_replay_cache.h"

#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/dpop.h"

namespace custos::support {
namespace {

class StoreReplayCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<store::TempSqliteStore>> temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
  }

  store::Store& store() { return temp_->store(); }

  // What the cache said: "new", a DpopError code, or the error.
  static std::string Said(const absl::StatusOr<std::optional<DpopError>>& result) {
    if (!result.ok()) return "error: " + result.status().ToString();
    if (!result->has_value()) return "new";
    return std::string(DpopErrorCode(**result));
  }

  // Whether the store still holds (scope, key), asked as of `as_of`, which must be before the
  // key's expiry (a live row makes Remember answer false). Leaves a row behind.
  bool StoreHolds(std::string_view scope, std::string_view key, absl::Time as_of) {
    bool held = false;
    EXPECT_TRUE(store()
                    .Write([&](store::Transaction& tx) -> absl::Status {
                      absl::StatusOr<bool> first =
                          tx.SharedState().Remember(scope, key, as_of + absl::Seconds(1), as_of);
                      if (!first.ok()) return first.status();
                      held = !*first;
                      return absl::OkStatus();
                    })
                    .ok());
    return held;
  }

  FakeClock clock_;
  std::unique_ptr<store::TempSqliteStore> temp_;
};

// Two caches on one store stand for two servers on one database.
TEST_F(StoreReplayCacheTest, AJtiRememberedByOneCacheIsAReplayForTheOther) {
  StoreDpopReplayCache node_a(store(), clock_, "dpop.support");
  StoreDpopReplayCache node_b(store(), clock_, "dpop.support");
  const absl::Time expires = clock_.Now() + absl::Seconds(60);
  EXPECT_EQ(Said(node_a.Remember("jkt-1", "jti-1", expires)), "new");
  EXPECT_EQ(Said(node_b.Remember("jkt-1", "jti-1", expires)), "dpop_replayed");
  EXPECT_EQ(Said(node_a.Remember("jkt-1", "jti-1", expires)), "dpop_replayed");
  EXPECT_EQ(Said(node_b.Remember("jkt-2", "jti-1", expires)), "new") << "another key";
  EXPECT_EQ(Said(node_b.Remember("jkt-1", "jti-2", expires)), "new") << "another jti";

  StoreDpopReplayCache oidc(store(), clock_, "dpop.oidc");
  EXPECT_EQ(Said(oidc.Remember("jkt-1", "jti-1", expires)), "new") << "another scope";
}

TEST_F(StoreReplayCacheTest, AnExpiredJtiIsNewAgain) {
  StoreDpopReplayCache cache(store(), clock_, "dpop.support");
  ASSERT_EQ(Said(cache.Remember("jkt", "jti", clock_.Now() + absl::Seconds(60))), "new");
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ(Said(cache.Remember("jkt", "jti", clock_.Now() + absl::Seconds(60))), "dpop_replayed");
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Said(cache.Remember("jkt", "jti", clock_.Now() + absl::Seconds(60))), "new");
}

TEST_F(StoreReplayCacheTest, OldRowsAreSweptAboutOncePerInterval) {
  StoreDpopReplayCache cache(
      store(), clock_, "dpop.support",
      {.sweep_interval = absl::Seconds(60), .sweep_margin = absl::Seconds(60)});
  const absl::Time t0 = clock_.Now();
  ASSERT_EQ(Said(cache.Remember("jkt", "old", t0 + absl::Seconds(60))), "new");  // sweeps
  // The next sweep is due; "old" expired 30 s ago, within the margin: kept.
  clock_.Set(t0 + absl::Seconds(90));
  ASSERT_EQ(Said(cache.Remember("jkt", "mid", t0 + absl::Seconds(150))), "new");
  EXPECT_TRUE(StoreHolds("dpop.support", "jkt:old", t0));
  // Past the margin, but no sweep is due yet.
  clock_.Set(t0 + absl::Seconds(130));
  ASSERT_EQ(Said(cache.Remember("jkt", "new", t0 + absl::Seconds(190))), "new");
  EXPECT_TRUE(StoreHolds("dpop.support", "jkt:old", t0));
  // The next sweep deletes it, and leaves what has not expired.
  clock_.Set(t0 + absl::Seconds(150));
  ASSERT_EQ(Said(cache.Remember("jkt", "newer", t0 + absl::Seconds(210))), "new");
  EXPECT_FALSE(StoreHolds("dpop.support", "jkt:old", t0));
  EXPECT_TRUE(StoreHolds("dpop.support", "jkt:mid", t0));
}

TEST_F(StoreReplayCacheTest, FailsClosedWhenTheStoreIsAway) {
  StoreDpopReplayCache cache(store(), clock_, "dpop.support");
  DpopVerifier verifier(clock_, {}, &cache);
  const DpopResult proof{.jkt = "jkt", .jti = "jti", .iat = clock_.Now()};
  store().Close();
  EXPECT_FALSE(cache.Remember("jkt", "jti", clock_.Now() + absl::Seconds(60)).ok());
  const absl::Status recorded = verifier.Record(proof);
  EXPECT_EQ(recorded.code(), absl::StatusCode::kUnavailable) << recorded;
  EXPECT_EQ(DpopErrorOf(recorded), std::nullopt);
}

}  // namespace
}  // namespace custos::support
