#include "http/store_rate_limiter.h"

#include <memory>
#include <string>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::http {
namespace {

// 2026-01-01T00:00:00Z: a whole multiple of every window below.
const absl::Time kWindowStart = absl::FromUnixSeconds(1767225600);

class StoreRateLimiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<store::TempSqliteStore>> temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
  }

  store::Store& store() { return temp_->store(); }

  FakeClock clock_{kWindowStart};
  std::unique_ptr<store::TempSqliteStore> temp_;
};

TEST_F(StoreRateLimiterTest, TheBucketBecomesFixedWindowsOfTheSameAverageRate) {
  StoreRateLimiter sign_in(store(), clock_, "authn", {.rate_per_second = 10, .burst = 20});
  EXPECT_EQ(sign_in.limit(), 20);
  EXPECT_EQ(sign_in.window(), absl::Seconds(2));
  StoreRateLimiter refused(store(), clock_, "refused_auth",
                           {.rate_per_second = 60, .burst = 20, .per = absl::Minutes(1)});
  EXPECT_EQ(refused.limit(), 20);
  EXPECT_EQ(refused.window(), absl::Seconds(20));
  // A burst below the rate: windows of about a second.
  StoreRateLimiter small_burst(store(), clock_, "x", {.rate_per_second = 10, .burst = 1});
  EXPECT_EQ(small_burst.limit(), 10);
  EXPECT_EQ(small_burst.window(), absl::Seconds(1));
  EXPECT_TRUE(sign_in.blocking());
  EXPECT_TRUE(sign_in.enabled());
}

// Two limiters on one store stand for two servers on one database.
TEST_F(StoreRateLimiterTest, RequestsCountAgainstOneLimitWhicheverNodeTheyReach) {
  StoreRateLimiter node_a(store(), clock_, "authn", {.rate_per_second = 2, .burst = 4});
  StoreRateLimiter node_b(store(), clock_, "authn", {.rate_per_second = 2, .burst = 4});
  ASSERT_EQ(node_a.window(), absl::Seconds(2));
  clock_.Advance(absl::Milliseconds(500));
  for (int i = 0; i < 4; ++i) {
    RateLimitDecision d = (i % 2 == 0 ? node_a : node_b).Acquire("198.51.100.7");
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 3 - i) << i;
    EXPECT_EQ(d.limit, 4);
    EXPECT_EQ(d.reset, kWindowStart + absl::Seconds(2));
  }
  for (StoreRateLimiter* node : {&node_a, &node_b}) {
    RateLimitDecision d = node->Acquire("198.51.100.7");
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.remaining, 0);
    EXPECT_EQ(d.retry_after, absl::Milliseconds(1500));
    EXPECT_EQ(d.reset, kWindowStart + absl::Seconds(2));
  }
  // Another address has its own count, and so has another limit on the same store.
  EXPECT_TRUE(node_b.Acquire("198.51.100.8").allowed);
  StoreRateLimiter refused(store(), clock_, "refused_auth", {.rate_per_second = 2, .burst = 4});
  EXPECT_TRUE(refused.Acquire("198.51.100.7").allowed);

  // The next window starts afresh.
  clock_.Set(kWindowStart + absl::Seconds(2));
  RateLimitDecision d = node_b.Acquire("198.51.100.7");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 3);
  EXPECT_EQ(d.reset, kWindowStart + absl::Seconds(4));
}

TEST_F(StoreRateLimiterTest, ARateOfZeroLimitsNothingAndWritesNothing) {
  StoreRateLimiter off(store(), clock_, "authn", {.rate_per_second = 0, .burst = 1});
  EXPECT_FALSE(off.enabled());
  store().Close();  // nothing may touch the store
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(off.Acquire("198.51.100.7").allowed) << i;
}

TEST_F(StoreRateLimiterTest, FailsOpenWhenTheStoreIsAway) {
  StoreRateLimiter limiter(store(), clock_, "authn", {.rate_per_second = 1, .burst = 1});
  ASSERT_TRUE(limiter.Acquire("198.51.100.7").allowed);
  ASSERT_FALSE(limiter.Acquire("198.51.100.7").allowed);
  store().Close();
  EXPECT_TRUE(limiter.Acquire("198.51.100.7").allowed)
      << "a limit that cannot be counted lets the request through";
}

TEST_F(StoreRateLimiterTest, EndedWindowsAreSwept) {
  StoreRateLimiter limiter(
      store(), clock_, "authn", {.rate_per_second = 1, .burst = 1},
      {.sweep_interval = absl::Seconds(60), .sweep_margin = absl::Seconds(60)});
  // Counts left by an address that went quiet, in a window that ended at kWindowStart + 1 s.
  ASSERT_TRUE(limiter.Acquire("198.51.100.7").allowed);  // sweeps (nothing yet)
  auto count_of_first_window = [&] {
    absl::StatusOr<int64_t> count = absl::InternalError("not run");
    EXPECT_TRUE(store()
                    .Write([&](store::Transaction& tx) -> absl::Status {
                      count = tx.SharedState().Count("authn", "198.51.100.7", kWindowStart,
                                                     kWindowStart + absl::Seconds(1), 0);
                      return count.status();
                    })
                    .ok());
    return count.value_or(-1);
  };
  EXPECT_EQ(count_of_first_window(), 1);
  clock_.Set(kWindowStart + absl::Seconds(60));
  ASSERT_TRUE(limiter.Acquire("198.51.100.8").allowed);  // sweeps; the window ended < 60 s ago
  EXPECT_EQ(count_of_first_window(), 1);
  clock_.Set(kWindowStart + absl::Seconds(119));
  ASSERT_TRUE(limiter.Acquire("198.51.100.8").allowed);  // no sweep due
  EXPECT_EQ(count_of_first_window(), 1);
  clock_.Set(kWindowStart + absl::Seconds(120));
  ASSERT_TRUE(limiter.Acquire("198.51.100.9").allowed);  // sweeps windows ended by +60 s
  EXPECT_EQ(count_of_first_window(), 0) << "swept";
}

}  // namespace
}  // namespace custos::http
