#include "common/time_format.h"

#include <gtest/gtest.h>

namespace custos {
namespace {

TEST(TimeFormatTest, RoundTripsWithMilliseconds) {
  absl::Time t = absl::FromUnixMillis(1764440562123);
  EXPECT_EQ(FormatRfc3339(t), "2025-11-29T18:22:42.123Z");
  auto parsed = ParseRfc3339("2025-11-29T18:22:42.123Z");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, t);
}

TEST(TimeFormatTest, AcceptsOffsetsAndRejectsGarbage) {
  auto parsed = ParseRfc3339("2025-11-29T19:22:42+01:00");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, absl::FromUnixSeconds(1764440562));
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
}

}  // namespace
}  // namespace custos
