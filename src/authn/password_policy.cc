#include "authn/password_policy.h"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "authn/common_passwords.h"
#include "authn/utf8.h"
#include "common/errors.h"

namespace custos::authn {
namespace {

// NIST SP 800-63B 5.1.1.2: verifiers SHOULD permit at least 64 characters.
constexpr int kLeastMaxLength = 64;

// Case folding is ASCII only: the list is ASCII, so folding other letters could only produce
// false matches, never find more real ones.
std::string Fold(std::string_view s) { return absl::AsciiStrToLower(std::string(s)); }

const absl::flat_hash_set<std::string>& Blocklist() {
  static const auto* set = [] {
    auto* s = new absl::flat_hash_set<std::string>();
    for (std::string_view entry : internal::CommonPasswordEntries()) s->insert(Fold(entry));
    return s;
  }();
  return *set;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(absl::string_view(a.data(), a.size()),
                                absl::string_view(b.data(), b.size()));
}

}  // namespace

PasswordPolicy::PasswordPolicy(int min_length, int max_length)
    : min_length_(std::max(min_length, 1)),
      max_length_(std::max({max_length, kLeastMaxLength, min_length})) {}

absl::Status PasswordPolicy::Check(std::string_view password, std::string_view login) const {
  constexpr std::string_view kSummary = "Password requirements were not met";
  std::optional<int> length = internal::CountCodePoints(password);
  if (!length.has_value()) {
    return ApiError(absl::StatusCode::kInvalidArgument, kErrPasswordPolicy, std::string(kSummary),
                    {"password: Password must be valid UTF-8 text"});
  }
  std::vector<std::string> causes;
  if (*length < min_length_) {
    causes.push_back(fmt::format("password: Password must be at least {} characters", min_length_));
  }
  if (*length > max_length_) {
    causes.push_back(fmt::format("password: Password must be at most {} characters", max_length_));
  }
  if (IsCommonPassword(password)) {
    causes.push_back(
        "password: This password was found in a list of commonly used passwords. Please try "
        "another password");
  }
  std::string_view local = login.substr(0, login.rfind('@'));
  if (!login.empty() && (EqualsIgnoreCase(password, login) ||
                         (!local.empty() && EqualsIgnoreCase(password, local)))) {
    causes.push_back("password: Password cannot be your username");
  }
  if (causes.empty()) return absl::OkStatus();
  return ApiError(absl::StatusCode::kInvalidArgument, kErrPasswordPolicy, std::string(kSummary),
                  std::move(causes));
}

bool IsCommonPassword(std::string_view password) {
  // No list entry is this long; skip folding a huge input.
  if (password.size() > 256) return false;
  return Blocklist().contains(Fold(password));
}

}  // namespace custos::authn
