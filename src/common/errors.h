#pragma once

// Errors that carry the management API's stable error code (errorCode, e.g. "E0000007") and
// causes (errorCauses) alongside the absl::StatusCode, so the domain decides what the client
// is told and api/ only renders it. A status without a code gets the default for its
// absl::StatusCode (see api/errors.h).

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace custos {

// Stable error codes of the management API.
inline constexpr std::string_view kErrValidation = "E0000001";      // 400 Api validation failed
inline constexpr std::string_view kErrBadJson = "E0000003";         // 400 body is not valid JSON
inline constexpr std::string_view kErrAuthFailed = "E0000004";      // 401 Authentication failed
inline constexpr std::string_view kErrInvalidSession = "E0000005";  // 403 Invalid session
inline constexpr std::string_view kErrForbidden = "E0000006";       // 403 no permission
inline constexpr std::string_view kErrNotFound = "E0000007";        // 404 Resource not found
inline constexpr std::string_view kErrInternal = "E0000009";        // 500 internal error
inline constexpr std::string_view kErrInvalidToken = "E0000011";    // 401 Invalid token provided
inline constexpr std::string_view kErrMethod = "E0000022";          // 405 method not supported
inline constexpr std::string_view kErrWrongStatus = "E0000038";     // 403 not allowed in status
inline constexpr std::string_view kErrRateLimit = "E0000047";       // 429 rate limit
inline constexpr std::string_view kErrPasscode = "E0000068";        // 403 invalid passcode
inline constexpr std::string_view kErrPasswordPolicy = "E0000080";  // 400 password policy

// Builds a status with an error code and causes ("field: message").
absl::Status ApiError(absl::StatusCode code, std::string_view error_code, std::string summary,
                      std::vector<std::string> causes = {});

// Shorthands.
absl::Status ValidationError(std::string summary, std::vector<std::string> causes = {});
absl::Status NotFoundError(std::string what);

// Adds a machine-readable reason ("device_noncompliant", "dpop_replayed", ...) that the error
// body carries as "reason", for clients that act on it. Returns the status.
absl::Status WithReason(absl::Status status, std::string_view reason);
// Empty when the status carries no reason.
std::string ReasonOf(const absl::Status& status);

// Empty when the status carries no code.
std::string ErrorCodeOf(const absl::Status& status);
std::vector<std::string> ErrorCausesOf(const absl::Status& status);

}  // namespace custos
