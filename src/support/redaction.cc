#include "support/redaction.h"

#include <array>

namespace custos::support {
namespace {

constexpr std::array kUsers = {
    FieldRule{"id", Reveal::kWhole},
    FieldRule{"status", Reveal::kWhole},
    FieldRule{"created", Reveal::kWhole},
    FieldRule{"activated", Reveal::kWhole},
    FieldRule{"statusChanged", Reveal::kWhole},
    FieldRule{"lastLogin", Reveal::kWhole},
    FieldRule{"lastUpdated", Reveal::kWhole},
    FieldRule{"passwordChanged", Reveal::kWhole},
    FieldRule{"profile.login", Reveal::kEmail},
    FieldRule{"profile.email", Reveal::kEmail},
    FieldRule{"profile.secondEmail", Reveal::kEmail},
    FieldRule{"profile.firstName", Reveal::kWhole},
    FieldRule{"profile.lastName", Reveal::kInitial},
    FieldRule{"profile.mobilePhone", Reveal::kPhone},
    FieldRule{"profile.primaryPhone", Reveal::kPhone},
};

// No secret, no credential id in clear: the factor's kind and state only.
constexpr std::array kFactors = {
    FieldRule{"id", Reveal::kWhole},
    FieldRule{"factorType", Reveal::kWhole},
    FieldRule{"provider", Reveal::kWhole},
    FieldRule{"status", Reveal::kWhole},
    FieldRule{"created", Reveal::kWhole},
    FieldRule{"lastUpdated", Reveal::kWhole},
    FieldRule{"profile.credentialId", Reveal::kEmail},
};

constexpr std::array kGroups = {
    FieldRule{"id", Reveal::kWhole},
    FieldRule{"created", Reveal::kWhole},
    FieldRule{"lastUpdated", Reveal::kWhole},
    FieldRule{"lastMembershipUpdated", Reveal::kWhole},
    FieldRule{"type", Reveal::kWhole},
    FieldRule{"profile.name", Reveal::kWhole},
    FieldRule{"profile.description", Reveal::kWhole},
};

// Bytes of the UTF-8 character that starts `s` (1 for an invalid lead byte).
size_t FirstCharLength(std::string_view s) {
  if (s.empty()) return 0;
  const unsigned char c = static_cast<unsigned char>(s[0]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  return std::min(n, s.size());
}

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t dot = path.find('.');
    parts.push_back(path.substr(0, dot));
    if (dot == std::string_view::npos) return parts;
    path.remove_prefix(dot + 1);
  }
}

}  // namespace

const std::span<const FieldRule> kUserFields = kUsers;
const std::span<const FieldRule> kFactorFields = kFactors;
const std::span<const FieldRule> kGroupFields = kGroups;

std::string MaskEmail(std::string_view email) {
  const size_t at = email.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  return std::string(email.substr(0, FirstCharLength(email))) + "***" +
         std::string(email.substr(at));
}

std::string MaskPhone(std::string_view phone) {
  std::string digits;
  for (char c : phone) {
    if (c >= '0' && c <= '9') digits += c;
  }
  if (digits.size() < 4) return "***";  // too short for two digits to say little
  return "***" + digits.substr(digits.size() - 2);
}

std::string Initial(std::string_view name) {
  if (name.empty()) return "";
  return std::string(name.substr(0, FirstCharLength(name))) + ".";
}

RedactedView Redact(const Json& object, std::span<const FieldRule> rules) {
  RedactedView out{.view = Json::object(), .shown = {}};
  for (const FieldRule& rule : rules) {
    const std::vector<std::string_view> path = Split(rule.path);
    const Json* value = &object;
    for (std::string_view key : path) {
      if (!value->is_object()) {
        value = nullptr;
        break;
      }
      auto it = value->find(std::string(key));
      if (it == value->end()) {
        value = nullptr;
        break;
      }
      value = &*it;
    }
    if (value == nullptr) continue;
    Json shown;
    if (rule.reveal == Reveal::kWhole) {
      shown = *value;
    } else if (!value->is_string()) {
      continue;
    } else {
      const std::string text = value->get<std::string>();
      shown = rule.reveal == Reveal::kEmail   ? MaskEmail(text)
              : rule.reveal == Reveal::kPhone ? MaskPhone(text)
                                              : Initial(text);
    }
    Json* target = &out.view;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      Json& next = (*target)[std::string(path[i])];
      if (!next.is_object()) next = Json::object();
      target = &next;
    }
    (*target)[std::string(path.back())] = std::move(shown);
    out.shown.push_back(rule.reveal == Reveal::kWhole ? std::string(rule.path)
                                                      : std::string(rule.path) + " (masked)");
  }
  return out;
}

}  // namespace custos::support
