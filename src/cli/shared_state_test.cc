#include "cli/shared_state.h"

#include <memory>
#include <string>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::cli {
namespace {

constexpr RateLimitOptions kLimit{.rate_per_second = 1, .burst = 2};

class SharedStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<store::TempSqliteStore>> temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
  }

  store::Store& store() { return temp_->store(); }

  FakeClock clock_{absl::FromUnixSeconds(1767225600)};
  std::unique_ptr<store::TempSqliteStore> temp_;
};

// One process serves an embedded store: its limits and replay caches stay in memory, and two
// made for the same scope are independent (nothing is written to the store).
TEST_F(SharedStateTest, TheEmbeddedStoreKeepsStateInMemory) {
  Config config;
  ASSERT_TRUE(config.store_url.empty());
  EXPECT_FALSE(SharesStateThroughStore(config));

  std::unique_ptr<RateLimit> one =
      MakeRateLimit(config, store(), clock_, kSignInLimitScope, kLimit);
  std::unique_ptr<RateLimit> two =
      MakeRateLimit(config, store(), clock_, kSignInLimitScope, kLimit);
  EXPECT_FALSE(one->blocking()) << "asked on the network thread, as before";
  EXPECT_TRUE(one->Acquire("198.51.100.7").allowed);
  EXPECT_TRUE(one->Acquire("198.51.100.7").allowed);
  EXPECT_FALSE(one->Acquire("198.51.100.7").allowed);
  EXPECT_TRUE(two->Acquire("198.51.100.7").allowed);

  const support::DpopOptions dpop = DpopOptionsOf(config);
  std::unique_ptr<support::DpopReplayCache> cache_a =
      MakeDpopReplayCache(config, store(), clock_, kSupportDpopScope, dpop);
  std::unique_ptr<support::DpopReplayCache> cache_b =
      MakeDpopReplayCache(config, store(), clock_, kSupportDpopScope, dpop);
  EXPECT_NE(dynamic_cast<support::MemoryDpopReplayCache*>(cache_a.get()), nullptr);
  const absl::Time expires = clock_.Now() + absl::Seconds(60);
  EXPECT_EQ(cache_a->Remember("jkt", "jti", expires).value(), std::nullopt);
  EXPECT_EQ(cache_a->Remember("jkt", "jti", expires).value(), support::DpopError::kReplayed);
  EXPECT_EQ(cache_b->Remember("jkt", "jti", expires).value(), std::nullopt);
}

// With PostgreSQL, state goes to the store, so that limits and caches made on different
// processes (here: two objects on one store) act as one.
TEST_F(SharedStateTest, APostgresStoreKeepsStateInTheStore) {
  Config config;
  config.store_url = "postgres://custos@db.example:5432/custos";
  EXPECT_TRUE(SharesStateThroughStore(config));

  std::unique_ptr<RateLimit> node_a =
      MakeRateLimit(config, store(), clock_, kSignInLimitScope, kLimit);
  std::unique_ptr<RateLimit> node_b =
      MakeRateLimit(config, store(), clock_, kSignInLimitScope, kLimit);
  EXPECT_TRUE(node_a->blocking()) << "asked on a worker thread";
  EXPECT_TRUE(node_a->Acquire("198.51.100.7").allowed);
  EXPECT_TRUE(node_b->Acquire("198.51.100.7").allowed);
  EXPECT_FALSE(node_a->Acquire("198.51.100.7").allowed);
  EXPECT_FALSE(node_b->Acquire("198.51.100.7").allowed);

  const support::DpopOptions dpop = DpopOptionsOf(config);
  std::unique_ptr<support::DpopReplayCache> cache_a =
      MakeDpopReplayCache(config, store(), clock_, kSupportDpopScope, dpop);
  std::unique_ptr<support::DpopReplayCache> cache_b =
      MakeDpopReplayCache(config, store(), clock_, kSupportDpopScope, dpop);
  std::unique_ptr<support::DpopReplayCache> oidc =
      MakeDpopReplayCache(config, store(), clock_, kOidcDpopScope, dpop);
  const absl::Time expires = clock_.Now() + absl::Seconds(60);
  EXPECT_EQ(cache_a->Remember("jkt", "jti", expires).value(), std::nullopt);
  EXPECT_EQ(cache_b->Remember("jkt", "jti", expires).value(), support::DpopError::kReplayed);
  EXPECT_EQ(oidc->Remember("jkt", "jti", expires).value(), std::nullopt)
      << "the OIDC endpoints keep their own cache, as before";
}

}  // namespace
}  // namespace custos::cli
