#pragma once

// RFC 3339 timestamps as the API shows them: UTC, millisecond precision, "Z" suffix
// ("2026-11-29T18:22:42.123Z").

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace custos {

std::string FormatRfc3339(absl::Time t);

// Accepts any RFC 3339 date-time ("2026-11-29T18:22:42Z", "...42.123+01:00").
absl::StatusOr<absl::Time> ParseRfc3339(std::string_view text);

}  // namespace custos
