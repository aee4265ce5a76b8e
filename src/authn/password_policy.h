#pragma once

// Password rules after NIST SP 800-63B section 5.1.1.2: at least `min_length` characters
// (Unicode code points, default 8), at most `max_length` (default 256, never below 64), any
// Unicode, no composition rules, and not in the blocklist of commonly used passwords
// (data/common-passwords.txt, compiled into the binary) nor equal to the user's login or its
// local part. Thread-safe (immutable).

#include <string_view>

#include "absl/status/status.h"

namespace custos::authn {

class PasswordPolicy {
 public:
  PasswordPolicy(int min_length, int max_length);
  // OK, or kInvalidArgument with error code E0000080 ("Password requirements were not met")
  // and one cause per broken rule, e.g. "password: Password must be at least 8 characters".
  // Invalid UTF-8 is refused.
  absl::Status Check(std::string_view password, std::string_view login) const;

 private:
  int min_length_;
  int max_length_;
};

// True when `password` (compared case-insensitively) is in the shipped blocklist.
bool IsCommonPassword(std::string_view password);

}  // namespace custos::authn
