#include "audit/keyword_search.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "common/json.h"

namespace custos::audit {
namespace {

using ::testing::ElementsAre;

const Json& Event() {
  static const Json* const event = new Json(Json::parse(R"({
    "eventType": "user.session.start",
    "actor": {"id": "00uadmin", "alternateId": "Admin@Example.com", "displayName": "Ada Lovelace"},
    "client": {"geographicalContext": {"city": "San Francisco"}},
    "transaction": {"id": "XOxBw-2JIRnCFd0gG0GjHAAABjY"},
    "authenticationContext": {"authenticationStep": 42},
    "target": [{"id": "00ujane", "displayName": "Jane Doe"}]
  })"));
  return *event;
}

bool Match(std::string_view q) {
  absl::StatusOr<KeywordSearch> search = ParseKeywords(q);
  EXPECT_TRUE(search.ok()) << q << ": " << search.status();
  return search.ok() && search->Matches(Event());
}

TEST(KeywordSearchTest, EveryKeywordMustOccurInSomeStringValue) {
  EXPECT_TRUE(Match("ada"));
  EXPECT_TRUE(Match("ADA lovelace"));
  EXPECT_TRUE(Match("San Francisco"));  // two keywords, both in one value
  EXPECT_TRUE(Match("jane session"));   // in different values, one inside an array
  EXPECT_FALSE(Match("jane bob"));
  EXPECT_TRUE(Match("xoxbw"));  // part of a hyphenated value
  EXPECT_TRUE(Match("2JIRnCFd0gG0GjHAAABjY"));
  EXPECT_TRUE(Match("@example.com"));
}

TEST(KeywordSearchTest, KeysAndNumbersAreNotSearched) {
  EXPECT_FALSE(Match("geographicalContext"));
  EXPECT_FALSE(Match("42"));
}

TEST(KeywordSearchTest, BlankQueryMatchesEverything) {
  EXPECT_TRUE(Match(""));
  EXPECT_TRUE(Match("   "));
  EXPECT_TRUE(KeywordSearch().Matches(OrderedJson::object()));
}

TEST(KeywordSearchTest, SplitsOnRunsOfSpacesAndLowerCases) {
  absl::StatusOr<KeywordSearch> search = ParseKeywords("  Ada   LOVELACE ");
  ASSERT_TRUE(search.ok());
  EXPECT_THAT(search->keywords(), ElementsAre("ada", "lovelace"));
}

TEST(KeywordSearchTest, WorksOnOrderedJson) {
  absl::StatusOr<KeywordSearch> search = ParseKeywords("lovelace");
  ASSERT_TRUE(search.ok());
  EXPECT_TRUE(search->Matches(OrderedJson::parse(Event().dump())));
}

TEST(KeywordSearchTest, LimitsCountAndLength) {
  EXPECT_TRUE(ParseKeywords("a b c d e f g h i j").ok());
  absl::StatusOr<KeywordSearch> eleven = ParseKeywords("a b c d e f g h i j k");
  EXPECT_EQ(eleven.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(eleven.status().message(), "q must have at most 10 keywords");

  EXPECT_TRUE(ParseKeywords(std::string(40, 'x')).ok());
  // 40 characters of two bytes each are fine; 41 are not.
  std::string e_acute = "\xC3\xA9";
  std::string forty;
  for (int i = 0; i < 40; ++i) forty += e_acute;
  EXPECT_TRUE(ParseKeywords(forty).ok());
  absl::StatusOr<KeywordSearch> long_one = ParseKeywords("ok " + forty + e_acute);
  EXPECT_EQ(long_one.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(long_one.status().message(), "each keyword in q must be at most 40 characters");
  EXPECT_FALSE(ParseKeywords(std::string(41, 'x')).ok());
}

}  // namespace
}  // namespace custos::audit
