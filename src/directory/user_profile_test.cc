#include "directory/user_profile.h"

#include <gtest/gtest.h>

#include "common/errors.h"

namespace custos::directory {
namespace {

Json Valid() {
  return {{"login", "ada@example.com"},
          {"email", "ada@example.com"},
          {"firstName", "Ada"},
          {"lastName", "Lovelace"}};
}

TEST(UserProfileTest, AcceptsTheDefaultProfile) {
  Json p = Valid();
  p["mobilePhone"] = "+44 20 7946 0000";
  p["title"] = nullptr;
  EXPECT_TRUE(ValidateProfile(p).ok());
}

TEST(UserProfileTest, RefusesUnknownPropertiesWrongTypesAndBlanks) {
  Json p = Valid();
  p["favouriteColour"] = "blue";
  p["firstName"] = 42;
  p.erase("email");
  absl::Status st = ValidateProfile(p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(ErrorCodeOf(st), kErrValidation);
  std::vector<std::string> causes = ErrorCausesOf(st);
  ASSERT_EQ(causes.size(), 3u);
  EXPECT_NE(causes[0].find("favouriteColour"), std::string::npos);
}

TEST(UserProfileTest, LoginMustLookLikeAnEmailAddress) {
  Json p = Valid();
  p["login"] = "ada";
  EXPECT_FALSE(ValidateProfile(p).ok());
  p["login"] = std::string(96, 'a') + "@x.io";  // 101 characters
  EXPECT_FALSE(ValidateProfile(p).ok());
}

TEST(UserProfileTest, MergeAppliesNullAsRemovalAndKeepsTheOldOnError) {
  Json p = Valid();
  p["title"] = "Countess";
  ASSERT_TRUE(MergeProfile(p, {{"title", nullptr}, {"city", "London"}}).ok());
  EXPECT_FALSE(p.contains("title"));
  EXPECT_EQ(p["city"], "London");
  Json before = p;
  EXPECT_FALSE(MergeProfile(p, {{"login", nullptr}}).ok());
  EXPECT_FALSE(MergeProfile(p, {{"nope", nullptr}}).ok());
  EXPECT_EQ(p, before);
}

}  // namespace
}  // namespace custos::directory
