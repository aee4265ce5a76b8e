#include "common/json.h"

#include <string>

#include <gtest/gtest.h>

namespace custos {
namespace {

TEST(JsonTest, ParsesObjects) {
  auto j = ParseJson(R"({"a": [1, 2], "b": "x"})");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["b"], "x");
}

TEST(JsonTest, RejectsGarbageAndDeepNesting) {
  EXPECT_FALSE(ParseJson("{").ok());
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_FALSE(ParseJson(std::string(100, '[') + std::string(100, ']')).ok());
  EXPECT_TRUE(ParseJson(std::string(10, '[') + std::string(10, ']')).ok());
}

TEST(JsonTest, DumpReplacesInvalidUtf8) {
  Json j = std::string("a\xff");
  EXPECT_NO_THROW(DumpJson(j));
}

}  // namespace
}  // namespace custos
