#include "authn/progressive_delay.h"

#include <gtest/gtest.h>

#include <string>

namespace custos::authn {
namespace {

TEST(ProgressiveDelayTest, ScheduleStartsAfterTwoFailuresDoublesAndCaps) {
  EXPECT_EQ(ProgressiveDelay::DelayAfter(0), absl::ZeroDuration());
  EXPECT_EQ(ProgressiveDelay::DelayAfter(1), absl::ZeroDuration());
  EXPECT_EQ(ProgressiveDelay::DelayAfter(2), absl::Milliseconds(250));
  EXPECT_EQ(ProgressiveDelay::DelayAfter(3), absl::Milliseconds(500));
  EXPECT_EQ(ProgressiveDelay::DelayAfter(4), absl::Seconds(1));
  EXPECT_EQ(ProgressiveDelay::DelayAfter(5), absl::Seconds(2));
  EXPECT_EQ(ProgressiveDelay::DelayAfter(6), absl::Seconds(4));
  EXPECT_EQ(ProgressiveDelay::DelayAfter(7), absl::Seconds(5));
  EXPECT_EQ(ProgressiveDelay::DelayAfter(1000), absl::Seconds(5));
}

TEST(ProgressiveDelayTest, CountsPerKeyAndResets) {
  FakeClock clock;
  ProgressiveDelay delay(clock);
  const std::string a = ProgressiveDelay::Key(TenantId("00o1"), "Alice@Example.com");
  const std::string b = ProgressiveDelay::Key(TenantId("00o1"), "bob@example.com");
  EXPECT_EQ(a, ProgressiveDelay::Key(TenantId("00o1"), "alice@example.COM"));
  EXPECT_NE(a, ProgressiveDelay::Key(TenantId("00o2"), "alice@example.com"));
  for (int i = 0; i < 4; ++i) delay.RecordFailure(a);
  EXPECT_EQ(delay.DelayFor(a), absl::Seconds(1));
  EXPECT_EQ(delay.DelayFor(b), absl::ZeroDuration());
  delay.Reset(a);
  EXPECT_EQ(delay.DelayFor(a), absl::ZeroDuration());
}

TEST(ProgressiveDelayTest, ForgetsAfterQuietPeriod) {
  FakeClock clock;
  ProgressiveDelay delay(clock);
  const std::string k = ProgressiveDelay::Key(TenantId("00o1"), "carol");
  for (int i = 0; i < 3; ++i) delay.RecordFailure(k);
  EXPECT_EQ(delay.DelayFor(k), absl::Milliseconds(500));
  clock.Advance(ProgressiveDelay::kForgetAfter);
  EXPECT_EQ(delay.DelayFor(k), absl::ZeroDuration());
  delay.RecordFailure(k);  // starts again from one
  EXPECT_EQ(delay.DelayFor(k), absl::ZeroDuration());
}

TEST(ProgressiveDelayTest, MapStaysBounded) {
  FakeClock clock;
  ProgressiveDelay delay(clock, /*max_keys=*/100);
  for (int i = 0; i < 1000; ++i) {
    delay.RecordFailure(ProgressiveDelay::Key(TenantId("00o1"), "user" + std::to_string(i)));
    clock.Advance(absl::Milliseconds(1));
  }
  EXPECT_LE(delay.size(), 100u);
  // The most recent keys are the ones kept, with their counts.
  const std::string last = ProgressiveDelay::Key(TenantId("00o1"), "user999");
  delay.RecordFailure(last);
  EXPECT_EQ(delay.DelayFor(last), absl::Milliseconds(250));  // its second failure
  // The oldest were dropped: their next failure counts as a first one.
  const std::string first = ProgressiveDelay::Key(TenantId("00o1"), "user0");
  delay.RecordFailure(first);
  delay.RecordFailure(first);
  EXPECT_EQ(delay.DelayFor(first), absl::Milliseconds(250));
}

}  // namespace
}  // namespace custos::authn
