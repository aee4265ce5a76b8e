#pragma once

// TOTP (RFC 6238) over HOTP (RFC 4226): HMAC-SHA-1, 6 digits, 30-second steps.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace custos::crypto {

inline constexpr int kTotpDigits = 6;
inline constexpr int kTotpPeriodSeconds = 30;
inline constexpr size_t kTotpSecretBytes = 20;

// `secret` is always the raw key bytes (kTotpSecretBytes when we make it), never base32.

// floor(unix seconds / 30).
int64_t TotpStep(absl::Time t);
// The 6-digit code for a step, zero-padded. With `step` as the counter this is HOTP (RFC 4226).
std::string TotpCode(std::string_view secret, int64_t step);

// Returns the matching step when `code` is valid within ±`skew_steps` of `now` and greater
// than `last_used_step` (a code is accepted at most once); the earliest such step when several
// match. A code that is not exactly 6 ASCII digits never matches. Every candidate step is
// checked, each with a constant-time comparison.
std::optional<int64_t> VerifyTotp(std::string_view secret, std::string_view code, absl::Time now,
                                  int skew_steps, int64_t last_used_step);

// otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30
// with issuer and account percent-encoded (all but RFC 3986 unreserved characters) and the
// secret in unpadded base32.
std::string TotpUri(std::string_view issuer, std::string_view account, std::string_view secret);

}  // namespace custos::crypto
