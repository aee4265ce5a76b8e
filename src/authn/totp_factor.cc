#include "authn/totp_factor.h"

#include <optional>

#include "common/errors.h"
#include "crypto/encoding.h"
#include "crypto/totp.h"

namespace custos::authn {
namespace {

absl::Status InvalidPasscode() {
  return ApiError(absl::StatusCode::kPermissionDenied, kErrPasscode, "Invalid Passcode/Answer",
                  {"passCode: Your passcode doesn't match our records. Please try again."});
}

}  // namespace

std::string TotpAssociatedData(const store::FactorRecord& record) {
  return "totp:" + record.tenant_id.value() + ":" + record.user_id.value() + ":" +
         record.id.value();
}

TotpEnrollment NewTotpFactor(const TenantId& tenant, const UserId& user, std::string_view issuer,
                             std::string_view account, crypto::Random& random,
                             const crypto::Sealer& sealer, const Clock& clock) {
  const absl::Time now = clock.Now();
  TotpEnrollment e;
  e.record.id = FactorId(random.Id(kFactorIdPrefix));
  e.record.tenant_id = tenant;
  e.record.user_id = user;
  e.record.factor_type = std::string(kTotpFactorType);
  e.record.provider = std::string(kTotpProvider);
  e.record.status = std::string(store::kFactorPendingActivation);
  const std::string secret = random.Bytes(crypto::kTotpSecretBytes);
  e.record.sealed_secret = sealer.Seal(secret, TotpAssociatedData(e.record));
  e.record.last_used_step = -1;
  e.record.created = now;
  e.record.last_updated = now;
  e.secret_base32 = crypto::Base32Encode(secret);
  e.otpauth_uri = crypto::TotpUri(issuer, account, secret);
  return e;
}

absl::StatusOr<int64_t> CheckTotpCode(const store::FactorRecord& record, std::string_view passcode,
                                      const crypto::Sealer& sealer, absl::Time now,
                                      int skew_steps) {
  absl::StatusOr<std::string> secret =
      sealer.Open(record.sealed_secret, TotpAssociatedData(record));
  if (!secret.ok()) {
    return absl::DataLossError("the TOTP secret of factor " + record.id.value() +
                               " cannot be opened");
  }
  std::optional<int64_t> step =
      crypto::VerifyTotp(*secret, passcode, now, skew_steps, record.last_used_step);
  if (!step.has_value()) return InvalidPasscode();
  return *step;
}

}  // namespace custos::authn
