#pragma once

// Writing small files that must survive a crash whole.

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace custos {

// Replaces `path` (mode 0600) in one step: a temporary file beside it is written and fsynced,
// renamed over `path`, and the directory fsynced, so a reader or a crash sees the old content
// or the new one, never a half-written file. The parent directory must exist. Errors name the
// path and the system error (kNotFound for a missing directory, kInternal otherwise).
absl::Status WriteFileAtomically(const std::string& path, std::string_view data);

}  // namespace custos
