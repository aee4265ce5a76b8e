#pragma once

// TOTP factors (token:software:totp): enrolment makes a fresh 160-bit secret, sealed at rest;
// verification accepts a code within the configured skew, once (replays of the same or an
// earlier step are refused).

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/ids.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "store/records.h"

namespace custos::authn {

inline constexpr std::string_view kTotpFactorType = "token:software:totp";
inline constexpr std::string_view kTotpProvider = "GOOGLE";

struct TotpEnrollment {
  store::FactorRecord record;  // status PENDING_ACTIVATION, secret sealed
  std::string secret_base32;   // shown once to the user
  std::string otpauth_uri;
};

// `issuer` names the tenant in authenticator apps; `account` is the user's login.
TotpEnrollment NewTotpFactor(const TenantId& tenant, const UserId& user, std::string_view issuer,
                             std::string_view account, crypto::Random& random,
                             const crypto::Sealer& sealer, const Clock& clock);

// The associated data a TOTP secret is sealed under: tenant, user and factor ids, so that a
// sealed secret copied onto another factor, user or tenant (ids are unique only per tenant) does
// not open.
std::string TotpAssociatedData(const store::FactorRecord& record);

// Returns the accepted time step; the caller stores it as record.last_used_step in the same
// transaction. kPermissionDenied with error code E0000068 ("Invalid Passcode/Answer") when the
// code is wrong, malformed or replayed; kDataLoss when the sealed secret cannot be opened.
absl::StatusOr<int64_t> CheckTotpCode(const store::FactorRecord& record, std::string_view passcode,
                                      const crypto::Sealer& sealer, absl::Time now, int skew_steps);

}  // namespace custos::authn
