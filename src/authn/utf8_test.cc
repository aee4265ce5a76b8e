#include "authn/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace custos::authn::internal {
namespace {

TEST(CountCodePointsTest, CountsCharactersNotBytes) {
  EXPECT_EQ(CountCodePoints(""), 0);
  EXPECT_EQ(CountCodePoints("abc"), 3);
  EXPECT_EQ(CountCodePoints("\xc3\xa9"), 1);                  // é
  EXPECT_EQ(CountCodePoints("\xe6\x97\xa5\xe6\x9c\xac"), 2);  // 日本
  EXPECT_EQ(CountCodePoints("\xf0\x9f\x94\x91"), 1);          // U+1F511 key emoji
  EXPECT_EQ(CountCodePoints(std::string("a\0b", 3)), 3);
}

TEST(CountCodePointsTest, RefusesMalformedUtf8) {
  EXPECT_EQ(CountCodePoints("\x80"), std::nullopt);              // lone continuation byte
  EXPECT_EQ(CountCodePoints("\xc3"), std::nullopt);              // truncated
  EXPECT_EQ(CountCodePoints("\xe6\x97"), std::nullopt);          // truncated
  EXPECT_EQ(CountCodePoints("\xc0\xaf"), std::nullopt);          // overlong '/'
  EXPECT_EQ(CountCodePoints("\xe0\x80\xaf"), std::nullopt);      // overlong '/'
  EXPECT_EQ(CountCodePoints("\xed\xa0\x80"), std::nullopt);      // surrogate U+D800
  EXPECT_EQ(CountCodePoints("\xf4\x90\x80\x80"), std::nullopt);  // above U+10FFFF
  EXPECT_EQ(CountCodePoints("\xff"), std::nullopt);
  EXPECT_EQ(CountCodePoints("ab\xc3("), std::nullopt);  // continuation byte missing
}

TEST(Utf8PrefixTest, NeverSplitsACharacter) {
  EXPECT_EQ(Utf8Prefix("abcdef", 3), "abc");
  EXPECT_EQ(Utf8Prefix("abc", 10), "abc");
  // "a" then a 3-byte character: a cut after 2 or 3 bytes keeps only "a".
  EXPECT_EQ(Utf8Prefix("a\xe6\x97\xa5z", 2), "a");
  EXPECT_EQ(Utf8Prefix("a\xe6\x97\xa5z", 3), "a");
  EXPECT_EQ(Utf8Prefix("a\xe6\x97\xa5z", 4), "a\xe6\x97\xa5");
}

}  // namespace
}  // namespace custos::authn::internal
