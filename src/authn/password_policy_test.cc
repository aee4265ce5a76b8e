#include "authn/password_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "authn/common_passwords.h"
#include "common/errors.h"

namespace custos::authn {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(PasswordPolicyTest, AcceptsAnOrdinaryPassphrase) {
  PasswordPolicy policy(8, 256);
  EXPECT_TRUE(policy.Check("correct horse battery staple", "alice@example.com").ok());
}

TEST(PasswordPolicyTest, NoCompositionRules) {
  PasswordPolicy policy(8, 256);
  EXPECT_TRUE(policy.Check("zqxwvjkmpt", "alice@example.com").ok());  // lower case only
  EXPECT_TRUE(policy.Check("        x", "alice@example.com").ok());   // spaces count
}

TEST(PasswordPolicyTest, MinimumCountsCodePointsNotBytes) {
  PasswordPolicy policy(8, 256);
  // Seven characters of three bytes each: 21 bytes, still too short.
  const std::string seven = Repeat("\xe6\x97\xa5", 7);
  absl::Status st = policy.Check(seven, "alice@example.com");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorCodeOf(st), kErrPasswordPolicy);
  EXPECT_EQ(st.message(), "Password requirements were not met");
  EXPECT_THAT(ErrorCausesOf(st), ElementsAre("password: Password must be at least 8 characters"));
  // Eight of them pass.
  EXPECT_TRUE(policy.Check(Repeat("\xe6\x97\xa5", 8), "alice@example.com").ok());
  // Four-byte characters (emoji) too.
  EXPECT_TRUE(policy.Check(Repeat("\xf0\x9f\x94\x91", 8), "alice@example.com").ok());
  EXPECT_FALSE(policy.Check(Repeat("\xf0\x9f\x94\x91", 7), "alice@example.com").ok());
}

TEST(PasswordPolicyTest, AllowsSixtyFourAndMore) {
  PasswordPolicy policy(8, 256);
  EXPECT_TRUE(policy.Check(Repeat("x", 64), "alice").ok());
  EXPECT_TRUE(policy.Check(Repeat("\xc3\xa9", 256), "alice").ok());  // 256 chars, 512 bytes
  absl::Status st = policy.Check(Repeat("x", 257), "alice");
  EXPECT_THAT(ErrorCausesOf(st), ElementsAre("password: Password must be at most 256 characters"));
}

TEST(PasswordPolicyTest, MaximumIsNeverBelowSixtyFour) {
  PasswordPolicy policy(8, 20);
  EXPECT_TRUE(policy.Check(Repeat("x", 64), "alice").ok());
  EXPECT_FALSE(policy.Check(Repeat("x", 65), "alice").ok());
}

TEST(PasswordPolicyTest, RefusesInvalidUtf8) {
  PasswordPolicy policy(8, 256);
  absl::Status st = policy.Check("abcdefgh\xff", "alice");
  EXPECT_EQ(ErrorCodeOf(st), kErrPasswordPolicy);
  EXPECT_THAT(ErrorCausesOf(st), ElementsAre("password: Password must be valid UTF-8 text"));
}

TEST(PasswordPolicyTest, RefusesCommonPasswordsCaseInsensitively) {
  PasswordPolicy policy(8, 256);
  for (std::string_view p : {"password", "PassWord", "iloveyou", "12345678", "ASDFJKL;"}) {
    absl::Status st = policy.Check(p, "alice@example.com");
    EXPECT_EQ(ErrorCodeOf(st), kErrPasswordPolicy) << p;
    EXPECT_THAT(ErrorCausesOf(st),
                ElementsAre("password: This password was found in a list of commonly used "
                            "passwords. Please try another password"))
        << p;
  }
}

TEST(PasswordPolicyTest, ReportsEveryBrokenRule) {
  PasswordPolicy policy(8, 256);
  EXPECT_THAT(ErrorCausesOf(policy.Check("abc123", "alice")),
              ElementsAre("password: Password must be at least 8 characters",
                          "password: This password was found in a list of commonly used "
                          "passwords. Please try another password"));
}

TEST(PasswordPolicyTest, RefusesTheLoginAndItsLocalPart) {
  PasswordPolicy policy(8, 256);
  const std::string cause = "password: Password cannot be your username";
  EXPECT_THAT(ErrorCausesOf(policy.Check("Alice.Smith@Example.com", "alice.smith@example.com")),
              ElementsAre(cause));
  EXPECT_THAT(ErrorCausesOf(policy.Check("ALICE.SMITH", "alice.smith@example.com")),
              ElementsAre(cause));
  EXPECT_THAT(ErrorCausesOf(policy.Check("winston.smith", "winston.smith")), ElementsAre(cause));
  // Containing the login is fine; only equality is refused.
  EXPECT_TRUE(policy.Check("alice.smith is my name", "alice.smith@example.com").ok());
}

TEST(CommonPasswordsTest, ListIsCompiledInWithoutComments) {
  auto entries = internal::CommonPasswordEntries();
  EXPECT_GT(entries.size(), 3000u);
  EXPECT_EQ(entries.front(), "123456");
  for (std::string_view e : entries) {
    EXPECT_FALSE(e.empty());
    EXPECT_FALSE(e.starts_with("#!comment")) << e;
  }
  // Entries with characters special to CMake lists and C++ literals survive.
  EXPECT_TRUE(IsCommonPassword("asdf;lkj"));
  EXPECT_TRUE(IsCommonPassword("asdf"));
  EXPECT_FALSE(IsCommonPassword("asdf;"));  // whole entries only, no prefixes
  EXPECT_FALSE(IsCommonPassword("a-long-unusual-passphrase-nobody-uses"));
}

TEST(PasswordPolicyTest, CausesNeverQuoteThePassword) {
  PasswordPolicy policy(8, 256);
  for (const std::string& cause : ErrorCausesOf(policy.Check("sekrit", "bob"))) {
    EXPECT_EQ(cause.find("sekrit"), std::string::npos);
  }
  EXPECT_THAT(ErrorCausesOf(policy.Check("a fine passphrase", "bob")), IsEmpty());
}

}  // namespace
}  // namespace custos::authn
