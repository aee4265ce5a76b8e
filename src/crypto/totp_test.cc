#include "crypto/totp.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace custos::crypto {
namespace {

using ::testing::Optional;

constexpr std::string_view kRfcSecret = "12345678901234567890";

TEST(TotpTest, HotpRfc4226AppendixD) {
  const char* expected[] = {"755224", "287082", "359152", "969429", "338314",
                            "254676", "287922", "162583", "399871", "520489"};
  for (int counter = 0; counter < 10; ++counter) {
    EXPECT_EQ(TotpCode(kRfcSecret, counter), expected[counter]) << "counter " << counter;
  }
}

TEST(TotpTest, Rfc6238AppendixBSha1LastSixDigits) {
  struct Row {
    int64_t unix_seconds;
    std::string eight_digits;
  };
  const Row rows[] = {{59, "94287082"},         {1111111109, "07081804"},
                      {1111111111, "14050471"}, {1234567890, "89005924"},
                      {2000000000, "69279037"}, {20000000000, "65353130"}};
  for (const Row& row : rows) {
    int64_t step = TotpStep(absl::FromUnixSeconds(row.unix_seconds));
    EXPECT_EQ(TotpCode(kRfcSecret, step), row.eight_digits.substr(2)) << row.unix_seconds;
  }
}

TEST(TotpTest, StepBoundaries) {
  EXPECT_EQ(TotpStep(absl::FromUnixSeconds(0)), 0);
  EXPECT_EQ(TotpStep(absl::FromUnixSeconds(29)), 0);
  EXPECT_EQ(TotpStep(absl::FromUnixSeconds(30)), 1);
  EXPECT_EQ(TotpStep(absl::FromUnixSeconds(1111111109)), 0x23523EC);  // RFC 6238 table
  EXPECT_EQ(TotpStep(absl::FromUnixSeconds(-1)), -1);
}

TEST(TotpTest, VerifyAcceptsCurrentCodeAndReturnsItsStep) {
  absl::Time now = absl::FromUnixSeconds(1111111111);
  int64_t step = TotpStep(now);
  EXPECT_THAT(VerifyTotp(kRfcSecret, "050471", now, 1, 0), Optional(step));
}

TEST(TotpTest, VerifyRefusesReplayOfSameOrEarlierStep) {
  absl::Time now = absl::FromUnixSeconds(1111111111);
  int64_t step = TotpStep(now);
  EXPECT_EQ(VerifyTotp(kRfcSecret, "050471", now, 1, step), std::nullopt);
  EXPECT_EQ(VerifyTotp(kRfcSecret, "050471", now, 1, step + 1), std::nullopt);
  // The previous step's code is refused once the current step was used.
  std::string previous = TotpCode(kRfcSecret, step - 1);
  EXPECT_THAT(VerifyTotp(kRfcSecret, previous, now, 1, step - 2), Optional(step - 1));
  EXPECT_EQ(VerifyTotp(kRfcSecret, previous, now, 1, step), std::nullopt);
}

TEST(TotpTest, VerifyHonoursSkewWindow) {
  absl::Time now = absl::FromUnixSeconds(1767225600);
  int64_t step = TotpStep(now);
  for (int64_t d : {-1, 1}) {
    std::string code = TotpCode(kRfcSecret, step + d);
    EXPECT_THAT(VerifyTotp(kRfcSecret, code, now, 1, 0), Optional(step + d)) << d;
    EXPECT_EQ(VerifyTotp(kRfcSecret, code, now, 0, 0), std::nullopt) << d;
  }
  for (int64_t d : {-2, 2}) {
    std::string code = TotpCode(kRfcSecret, step + d);
    EXPECT_EQ(VerifyTotp(kRfcSecret, code, now, 1, 0), std::nullopt) << d;
    EXPECT_THAT(VerifyTotp(kRfcSecret, code, now, 2, 0), Optional(step + d)) << d;
  }
}

TEST(TotpTest, VerifyRejectsWrongCodesAndSecrets) {
  absl::Time now = absl::FromUnixSeconds(1111111111);
  EXPECT_EQ(VerifyTotp(kRfcSecret, "050472", now, 1, 0), std::nullopt);
  EXPECT_EQ(VerifyTotp("another secret......", "050471", now, 1, 0), std::nullopt);
}

TEST(TotpTest, VerifyRejectsCodesThatAreNotSixAsciiDigits) {
  absl::Time now = absl::FromUnixSeconds(1111111111);
  for (std::string code : {"", "50471", "0504710", "14050471", " 050471", "050471 ", "05047a",
                           "+50471", "05 471", "０50471"}) {
    EXPECT_EQ(VerifyTotp(kRfcSecret, code, now, 1, 0), std::nullopt) << code;
  }
  EXPECT_EQ(VerifyTotp(kRfcSecret, std::string("050471\0", 7), now, 1, 0), std::nullopt);
}

TEST(TotpTest, UriPercentEncodesIssuerAndAccount) {
  EXPECT_EQ(TotpUri("Acme Corp", "ann@example.com", kRfcSecret),
            "otpauth://totp/Acme%20Corp:ann%40example.com?secret="
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Corp&algorithm=SHA1&digits=6&"
            "period=30");
  EXPECT_EQ(TotpUri("a:b&c=d", "x/y?z", "\x01"),
            "otpauth://totp/a%3Ab%26c%3Dd:x%2Fy%3Fz?secret=AE&issuer=a%3Ab%26c%3Dd&"
            "algorithm=SHA1&digits=6&period=30");
  EXPECT_EQ(TotpUri("Zürich", "u", "\x01"),
            "otpauth://totp/Z%C3%BCrich:u?secret=AE&issuer=Z%C3%BCrich&algorithm=SHA1&digits=6&"
            "period=30");
}

}  // namespace
}  // namespace custos::crypto
