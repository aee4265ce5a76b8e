#include "common/logging.h"

#include <algorithm>
#include <sstream>
#include <string>

#include <spdlog/spdlog.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

TEST(LoggingTest, JsonLineHasTimeLevelMsgAndFields) {
  std::ostringstream out;
  ASSERT_TRUE(InitLoggingTo(out, "info", "json").ok());
  Log(LogLevel::kInfo, "hello \"you\"", {{"n", 3}, {"s", "x y"}, {"msg", "dropped"}});
  std::string line = out.str();
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  auto j = ParseJson(line);
  ASSERT_TRUE(j.ok()) << line;
  EXPECT_EQ((*j)["level"], "info");
  EXPECT_EQ((*j)["msg"], "hello \"you\"");
  EXPECT_EQ((*j)["n"], 3);
  EXPECT_EQ((*j)["s"], "x y");
  EXPECT_THAT((*j)["time"].get<std::string>(),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z"));
}

TEST(LoggingTest, PlainSpdlogCallsAreJsonToo) {
  std::ostringstream out;
  ASSERT_TRUE(InitLoggingTo(out, "info", "json").ok());
  spdlog::warn("disk {} full", "/data");
  auto j = ParseJson(out.str());
  ASSERT_TRUE(j.ok()) << out.str();
  EXPECT_EQ((*j)["level"], "warn");
  EXPECT_EQ((*j)["msg"], "disk /data full");
}

TEST(LoggingTest, LevelFilters) {
  std::ostringstream out;
  ASSERT_TRUE(InitLoggingTo(out, "warn", "json").ok());
  Log(LogLevel::kInfo, "quiet");
  EXPECT_EQ(out.str(), "");
  Log(LogLevel::kError, "loud");
  EXPECT_THAT(out.str(), HasSubstr("\"level\":\"error\""));
}

TEST(LoggingTest, RejectsUnknownLevelOrFormat) {
  std::ostringstream out;
  EXPECT_FALSE(InitLoggingTo(out, "verbose", "json").ok());
  EXPECT_FALSE(InitLoggingTo(out, "info", "xml").ok());
}

TEST(LoggingTest, TextFormatQuotesValuesAndCannotForgeLines) {
  std::ostringstream out;
  ASSERT_TRUE(InitLoggingTo(out, "info", "text").ok());
  Log(LogLevel::kInfo, "a\nb", {{"route", "/t/{tenant}"}, {"ua", "evil\nlevel=error"}, {"n", 2}});
  std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_THAT(text, HasSubstr(" info a b route=/t/{tenant} ua=\"evil\\nlevel=error\" n=2\n"));
}

TEST(LoggingTest, AccessLineRedactsSecretQueryValues) {
  std::ostringstream out;
  ASSERT_TRUE(InitLoggingTo(out, "info", "json").ok());
  LogAccess({.request_id = "r1",
             .method = "GET",
             .route = "/t/{tenant}/login",
             .target = "/t/acme/login?stateToken=st-secret&limit=5&pass%77ord=pw-secret&"
                       "sessionToken=ss-secret&code=c-secret&passCode=123456&flag",
             .status = 200,
             .duration_ms = 1.5,
             .remote_ip = "127.0.0.1",
             .user_agent = std::string(1000, 'u'),
             .error_id = ""});
  std::string line = out.str();
  for (const char* secret : {"st-secret", "pw-secret", "ss-secret", "c-secret", "123456"}) {
    EXPECT_THAT(line, Not(HasSubstr(secret)));
  }
  auto j = ParseJson(line);
  ASSERT_TRUE(j.ok()) << line;
  EXPECT_EQ((*j)["msg"], "request");
  EXPECT_EQ((*j)["path"],
            "/t/acme/login?stateToken=REDACTED&limit=5&pass%77ord=REDACTED&"
            "sessionToken=REDACTED&code=REDACTED&passCode=REDACTED&flag");
  EXPECT_EQ((*j)["route"], "/t/{tenant}/login");
  EXPECT_EQ((*j)["status"], 200);
  EXPECT_EQ((*j)["duration_ms"], 1.5);
  EXPECT_EQ((*j)["user_agent"].get<std::string>().size(), 256u);
  EXPECT_FALSE(j->contains("error_id"));
}

TEST(LoggingTest, RedactTargetLeavesOrdinaryTargetsAlone) {
  EXPECT_EQ(RedactTarget("/a/b"), "/a/b");
  EXPECT_EQ(RedactTarget("/a?limit=2&after=x"), "/a?limit=2&after=x");
  EXPECT_EQ(RedactTarget("/a?id_token_hint=eyJ&client_secret=s"),
            "/a?id_token_hint=REDACTED&client_secret=REDACTED");
}

}  // namespace
}  // namespace custos
