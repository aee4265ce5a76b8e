#include "directory/user_profile.h"

#include <array>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/errors.h"

namespace custos::directory {
namespace {

constexpr std::array<std::string_view, 4> kRequired = {"login", "email", "firstName", "lastName"};

constexpr std::array<std::string_view, 31> kProperties = {"middleName",
                                                          "honorificPrefix",
                                                          "honorificSuffix",
                                                          "title",
                                                          "displayName",
                                                          "nickName",
                                                          "profileUrl",
                                                          "secondEmail",
                                                          "mobilePhone",
                                                          "primaryPhone",
                                                          "streetAddress",
                                                          "city",
                                                          "state",
                                                          "zipCode",
                                                          "countryCode",
                                                          "postalAddress",
                                                          "preferredLanguage",
                                                          "locale",
                                                          "timezone",
                                                          "userType",
                                                          "employeeNumber",
                                                          "costCenter",
                                                          "organization",
                                                          "division",
                                                          "department",
                                                          "managerId",
                                                          "manager",
                                                          "login",
                                                          "email",
                                                          "firstName",
                                                          "lastName"};

constexpr size_t kMaxLoginLength = 100;
constexpr size_t kMaxValueLength = 1024;

bool Known(std::string_view key) {
  for (std::string_view k : kProperties) {
    if (k == key) return true;
  }
  return false;
}

// Deliberately loose: one '@', something either side, no spaces or control characters.
bool LooksLikeEmail(std::string_view s) {
  size_t at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size()) return false;
  if (s.find('@', at + 1) != std::string_view::npos) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateProfile(const Json& profile) {
  if (!profile.is_object()) {
    return ValidationError("Api validation failed: profile", {"profile: must be an object"});
  }
  std::vector<std::string> causes;
  for (const auto& [key, value] : profile.items()) {
    if (!Known(key)) {
      causes.push_back(fmt::format("{}: Property name '{}' is not defined in profile", key, key));
      continue;
    }
    if (!value.is_string() && !value.is_null()) {
      causes.push_back(fmt::format("{}: must be a string", key));
      continue;
    }
    if (value.is_string() && value.get_ref<const std::string&>().size() > kMaxValueLength) {
      causes.push_back(fmt::format("{}: must be at most {} characters", key, kMaxValueLength));
    }
  }
  for (std::string_view key : kRequired) {
    auto it = profile.find(std::string(key));
    bool blank = it == profile.end() || it->is_null() ||
                 (it->is_string() && it->get_ref<const std::string&>().empty());
    if (blank) {
      causes.push_back(fmt::format("{}: The field cannot be left blank", key));
    }
  }
  if (auto it = profile.find("login"); it != profile.end() && it->is_string()) {
    const std::string& login = it->get_ref<const std::string&>();
    if (!login.empty() && !LooksLikeEmail(login)) {
      causes.push_back("login: Username must be in the form of an email address");
    }
    if (login.size() > kMaxLoginLength) {
      causes.push_back(fmt::format("login: must be at most {} characters", kMaxLoginLength));
    }
  }
  for (std::string_view key : {"email", "secondEmail"}) {
    auto it = profile.find(std::string(key));
    if (it != profile.end() && it->is_string() && !it->get_ref<const std::string&>().empty() &&
        !LooksLikeEmail(it->get_ref<const std::string&>())) {
      causes.push_back(fmt::format("{}: Does not match required pattern", key));
    }
  }
  if (!causes.empty()) return ValidationError("Api validation failed: profile", causes);
  return absl::OkStatus();
}

absl::Status MergeProfile(Json& profile, const Json& partial) {
  if (!partial.is_object()) {
    return ValidationError("Api validation failed: profile", {"profile: must be an object"});
  }
  Json merged = profile;
  for (const auto& [key, value] : partial.items()) {
    if (value.is_null()) {
      merged.erase(key);
    } else {
      merged[key] = value;
    }
  }
  // Validate the partial's own keys too, so a null for an unknown property is still refused.
  for (const auto& [key, value] : partial.items()) {
    if (!Known(key)) {
      return ValidationError(
          "Api validation failed: profile",
          {fmt::format("{}: Property name '{}' is not defined in profile", key, key)});
    }
  }
  if (absl::Status st = ValidateProfile(merged); !st.ok()) return st;
  profile = std::move(merged);
  return absl::OkStatus();
}

}  // namespace custos::directory
