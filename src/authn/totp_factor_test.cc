#include "authn/totp_factor.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "common/errors.h"
#include "crypto/encoding.h"
#include "crypto/totp.h"

namespace custos::authn {
namespace {

constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";

class TotpFactorTest : public ::testing::Test {
 protected:
  TotpFactorTest() : sealer_(crypto::Sealer::FromKey(kKey)), random_(7) {}

  TotpEnrollment Enroll() {
    return NewTotpFactor(TenantId("00otenant00000000001"), UserId("00uuser0000000000001"), "acme",
                         "alice@example.com", random_, *sealer_, clock_);
  }
  std::string Secret(const TotpEnrollment& e) { return *crypto::Base32Decode(e.secret_base32); }

  FakeClock clock_;
  std::unique_ptr<crypto::Sealer> sealer_;
  crypto::SeededRandom random_;
};

TEST_F(TotpFactorTest, EnrolmentMakesAPendingSealedFactor) {
  TotpEnrollment e = Enroll();
  EXPECT_TRUE(e.record.id.value().starts_with(kFactorIdPrefix));
  EXPECT_EQ(e.record.factor_type, kTotpFactorType);
  EXPECT_EQ(e.record.provider, kTotpProvider);
  EXPECT_EQ(e.record.status, store::kFactorPendingActivation);
  EXPECT_EQ(e.record.last_used_step, -1);
  EXPECT_EQ(Secret(e).size(), 20u);  // 160 bits
  EXPECT_EQ(e.record.sealed_secret.find(Secret(e)), std::string::npos);
  EXPECT_TRUE(absl::StrContains(e.otpauth_uri, "secret=" + e.secret_base32));
  EXPECT_TRUE(absl::StartsWith(e.otpauth_uri, "otpauth://totp/acme:"));
  EXPECT_NE(Enroll().secret_base32, e.secret_base32);
}

TEST_F(TotpFactorTest, ASealedSecretOpensOnlyOnItsOwnRow) {
  TotpEnrollment e = Enroll();
  std::string code = crypto::TotpCode(Secret(e), crypto::TotpStep(clock_.Now()));
  ASSERT_TRUE(CheckTotpCode(e.record, code, *sealer_, clock_.Now(), 1).ok());
  // The same factor id under another user, or another tenant, does not open the secret.
  store::FactorRecord moved = e.record;
  moved.user_id = UserId("00uSOMEONEELSE0000");
  EXPECT_TRUE(absl::IsDataLoss(CheckTotpCode(moved, code, *sealer_, clock_.Now(), 1).status()));
  moved = e.record;
  moved.tenant_id = TenantId("00oOTHERTENANT0000");
  EXPECT_TRUE(absl::IsDataLoss(CheckTotpCode(moved, code, *sealer_, clock_.Now(), 1).status()));
}

// RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082; the 6-digit code is its last six digits.
TEST_F(TotpFactorTest, AcceptsTheRfc6238Vector) {
  store::FactorRecord record;
  record.id = FactorId("uftrfc6238000000001");
  record.sealed_secret = sealer_->Seal("12345678901234567890", TotpAssociatedData(record));
  absl::StatusOr<int64_t> step =
      CheckTotpCode(record, "287082", *sealer_, absl::FromUnixSeconds(59), 1);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(*step, 1);
  // T = 1111111109: 07081804.
  EXPECT_EQ(*CheckTotpCode(record, "081804", *sealer_, absl::FromUnixSeconds(1111111109), 1),
            1111111109 / 30);
}

TEST_F(TotpFactorTest, AcceptsOneStepOfSkewEitherSideAndNoMore) {
  TotpEnrollment e = Enroll();
  const int64_t now_step = crypto::TotpStep(clock_.Now());
  for (int64_t offset : {-1, 0, 1}) {
    std::string code = crypto::TotpCode(Secret(e), now_step + offset);
    absl::StatusOr<int64_t> step = CheckTotpCode(e.record, code, *sealer_, clock_.Now(), 1);
    ASSERT_TRUE(step.ok()) << offset;
    EXPECT_EQ(*step, now_step + offset);
  }
  for (int64_t offset : {-2, 2}) {
    std::string code = crypto::TotpCode(Secret(e), now_step + offset);
    absl::StatusOr<int64_t> step = CheckTotpCode(e.record, code, *sealer_, clock_.Now(), 1);
    EXPECT_EQ(step.status().code(), absl::StatusCode::kPermissionDenied) << offset;
    EXPECT_EQ(ErrorCodeOf(step.status()), kErrPasscode);
  }
}

TEST_F(TotpFactorTest, RefusesReplayOfTheSameOrAnEarlierStep) {
  TotpEnrollment e = Enroll();
  const int64_t now_step = crypto::TotpStep(clock_.Now());
  std::string code = crypto::TotpCode(Secret(e), now_step);
  ASSERT_TRUE(CheckTotpCode(e.record, code, *sealer_, clock_.Now(), 1).ok());
  e.record.last_used_step = now_step;  // as the caller stores it
  absl::StatusOr<int64_t> again = CheckTotpCode(e.record, code, *sealer_, clock_.Now(), 1);
  EXPECT_EQ(ErrorCodeOf(again.status()), kErrPasscode);
  std::string earlier = crypto::TotpCode(Secret(e), now_step - 1);
  EXPECT_EQ(ErrorCodeOf(CheckTotpCode(e.record, earlier, *sealer_, clock_.Now(), 1).status()),
            kErrPasscode);
  // The next step's code still works.
  clock_.Advance(absl::Seconds(30));
  EXPECT_TRUE(
      CheckTotpCode(e.record, crypto::TotpCode(Secret(e), now_step + 1), *sealer_, clock_.Now(), 1)
          .ok());
}

TEST_F(TotpFactorTest, RefusesMalformedCodes) {
  TotpEnrollment e = Enroll();
  for (std::string_view bad : {"", "12345", "1234567", "abcdef", " 123456"}) {
    EXPECT_EQ(ErrorCodeOf(CheckTotpCode(e.record, bad, *sealer_, clock_.Now(), 1).status()),
              kErrPasscode)
        << bad;
  }
}

TEST_F(TotpFactorTest, SealedSecretIsBoundToItsFactor) {
  TotpEnrollment a = Enroll();
  TotpEnrollment b = Enroll();
  b.record.sealed_secret = a.record.sealed_secret;  // moved onto another factor row
  std::string code = crypto::TotpCode(Secret(a), crypto::TotpStep(clock_.Now()));
  EXPECT_EQ(CheckTotpCode(b.record, code, *sealer_, clock_.Now(), 1).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace custos::authn
