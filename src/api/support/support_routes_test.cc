#include "api/common.h"

#include <gtest/gtest.h>

namespace custos::api {
namespace {

TEST(ParseFormTest, DecodesPairsPlusAndPercentEscapes) {
  absl::StatusOr<std::map<std::string, std::string>> form =
      ParseFormBody("grant_type=urn%3Aietf%3Aparams&subject_token=a+b%2Fc&empty=&flag");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(form->at("grant_type"), "urn:ietf:params");
  EXPECT_EQ(form->at("subject_token"), "a b/c");
  EXPECT_EQ(form->at("empty"), "");
  EXPECT_EQ(form->at("flag"), "");
  EXPECT_EQ(form->size(), 4u);
}

TEST(ParseFormTest, RefusesRepeatedParametersAndBadEscapes) {
  EXPECT_FALSE(ParseFormBody("a=1&a=2").ok());
  EXPECT_FALSE(ParseFormBody("a=%zz").ok());
  EXPECT_FALSE(ParseFormBody("a=%4").ok());
  EXPECT_TRUE(ParseFormBody("").ok());
}

}  // namespace
}  // namespace custos::api
