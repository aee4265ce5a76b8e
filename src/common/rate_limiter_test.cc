#include "common/rate_limiter.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace custos {
namespace {

int AllowedOf(RateLimiter& limiter, std::string_view key, int attempts) {
  int allowed = 0;
  for (int i = 0; i < attempts; ++i) allowed += limiter.Acquire(key).allowed ? 1 : 0;
  return allowed;
}

TEST(RateLimiterTest, BurstThenRefillAtTheRate) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 2, .burst = 5}, clock);
  for (int i = 0; i < 5; ++i) {
    RateLimitDecision d = limiter.Acquire("10.0.0.1");
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 5);
    EXPECT_EQ(d.remaining, 4 - i);
  }
  RateLimitDecision refused = limiter.Acquire("10.0.0.1");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after, absl::Milliseconds(500));
  EXPECT_EQ(refused.reset, clock.Now() + absl::Milliseconds(500));

  // Half a second gives back one token at 2/s, and only one.
  clock.Advance(absl::Milliseconds(499));
  EXPECT_FALSE(limiter.Acquire("10.0.0.1").allowed);
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(limiter.Acquire("10.0.0.1").allowed);
  EXPECT_FALSE(limiter.Acquire("10.0.0.1").allowed);

  // A long pause refills up to the burst, not beyond.
  clock.Advance(absl::Hours(1));
  EXPECT_EQ(AllowedOf(limiter, "10.0.0.1", 100), 5);
}

TEST(RateLimiterTest, SteadyTrafficAtTheRateIsNeverRefused) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 10, .burst = 1}, clock);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(limiter.Acquire("a").allowed) << i;
    clock.Advance(absl::Milliseconds(100));
  }
}

TEST(RateLimiterTest, AllowedDecisionResetIsWhenTheBucketIsFull) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 4, .burst = 8}, clock);
  limiter.Acquire("a");
  RateLimitDecision d = limiter.Acquire("a");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 6);
  EXPECT_EQ(d.reset, clock.Now() + absl::Milliseconds(500));
  EXPECT_EQ(d.retry_after, absl::ZeroDuration());
}

TEST(RateLimiterTest, KeysAreIndependent) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 1, .burst = 3}, clock);
  EXPECT_EQ(AllowedOf(limiter, "192.0.2.1", 10), 3);
  EXPECT_EQ(AllowedOf(limiter, "192.0.2.2", 10), 3);
  EXPECT_FALSE(limiter.Acquire("192.0.2.1").allowed);
  EXPECT_EQ(limiter.TrackedKeys(), 2u);
}

TEST(RateLimiterTest, IdleBucketsAreForgottenOnceFull) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 10, .burst = 20}, clock);
  for (int i = 0; i < 50; ++i) limiter.Acquire(fmt::format("10.0.0.{}", i));
  EXPECT_EQ(limiter.TrackedKeys(), 50u);
  // 20 tokens at 10/s: after 2 s every bucket is full again, so keeping it changes nothing.
  clock.Advance(absl::Milliseconds(1999));
  limiter.Acquire("10.0.1.0");
  EXPECT_EQ(limiter.TrackedKeys(), 51u);
  clock.Advance(absl::Milliseconds(1));
  limiter.Acquire("10.0.1.1");
  EXPECT_EQ(limiter.TrackedKeys(), 2u);
  // A forgotten key starts over with a full bucket.
  EXPECT_EQ(AllowedOf(limiter, "10.0.0.0", 100), 20);
}

TEST(RateLimiterTest, CapDropsTheLeastRecentlyUsedKey) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 1, .burst = 2, .max_keys = 3}, clock);
  EXPECT_EQ(AllowedOf(limiter, "a", 5), 2);
  EXPECT_EQ(AllowedOf(limiter, "b", 5), 2);
  EXPECT_EQ(AllowedOf(limiter, "c", 5), 2);
  EXPECT_FALSE(limiter.Acquire("a").allowed);  // "a" is now the most recently used
  limiter.Acquire("d");                        // drops "b"
  EXPECT_EQ(limiter.TrackedKeys(), 3u);
  EXPECT_FALSE(limiter.Acquire("a").allowed);
  EXPECT_FALSE(limiter.Acquire("c").allowed);
  EXPECT_TRUE(limiter.Acquire("b").allowed);  // forgotten, so a fresh bucket (drops "d")
  EXPECT_EQ(limiter.TrackedKeys(), 3u);
}

TEST(RateLimiterTest, ZeroRateTurnsItOff) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 0, .burst = 20}, clock);
  EXPECT_FALSE(limiter.enabled());
  EXPECT_EQ(AllowedOf(limiter, "10.0.0.1", 1000), 1000);
  EXPECT_EQ(limiter.TrackedKeys(), 0u);
}

TEST(RateLimiterTest, ClockSteppingBackDoesNotLockAKeyOut) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 1, .burst = 1}, clock);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  clock.Advance(-absl::Hours(1));
  EXPECT_FALSE(limiter.Acquire("a").allowed);
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(limiter.Acquire("a").allowed);
}

TEST(RateLimiterTest, ConcurrentCallersShareOneBucket) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 1, .burst = 100}, clock);
  std::atomic<int> allowed = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) allowed += limiter.Acquire("shared").allowed ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed, 100);
}

TEST(RateLimiterTest, KeysIpv6ClientsByTheirSlash64) {
  EXPECT_EQ(RateLimitKeyOf("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(RateLimitKeyOf("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(RateLimitKeyOf("2001:db8:1:2::1"), RateLimitKeyOf("2001:db8:1:2:ffff::9"));
  EXPECT_NE(RateLimitKeyOf("2001:db8:1:2::1"), RateLimitKeyOf("2001:db8:1:3::1"));
  EXPECT_EQ(RateLimitKeyOf("::ffff:198.51.100.4"), "198.51.100.4");
  EXPECT_EQ(RateLimitKeyOf("not an address"), "not an address");
}

TEST(RateLimiterTest, RateCanBePerMinute) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 60, .burst = 2, .per = absl::Minutes(1)}, clock);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  EXPECT_FALSE(limiter.Acquire("a").allowed);
  clock.Advance(absl::Milliseconds(500));
  EXPECT_FALSE(limiter.Acquire("a").allowed) << "60 per minute is one per second";
  clock.Advance(absl::Milliseconds(600));
  EXPECT_TRUE(limiter.Acquire("a").allowed);
}

TEST(RateLimiterTest, IsAnInMemoryRateLimitThatNeverBlocks) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_second = 1, .burst = 1}, clock);
  RateLimit& limit = limiter;
  EXPECT_FALSE(limit.blocking()) << "the server asks it on its network thread";
  EXPECT_TRUE(limit.enabled());
  EXPECT_TRUE(limit.Acquire("a").allowed);
  EXPECT_FALSE(limit.Acquire("a").allowed);
  EXPECT_EQ(limiter.TrackedKeys(), 1u);
}

}  // namespace
}  // namespace custos
