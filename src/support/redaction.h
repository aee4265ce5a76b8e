#pragma once

// What support staff may see of a tenant: a redacted projection, declared here and nowhere
// else. A projection is an allow-list of fields, each with how much of it shows: whole, masked
// (e-mail "j***@example.com", phone "***99", a name as its initial), or not at all. Anything
// not listed (custom profile attributes, credentials, factor secrets, tokens) is left out, so a
// new field stays hidden until someone decides to show it.
//
// Pure functions; thread-safe.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace custos::support {

enum class Reveal {
  kWhole,    // the value as it is
  kEmail,    // first character of the local part, "***", then "@domain"
  kPhone,    // "***" and the last two digits
  kInitial,  // the first character and "."
};

// One allowed field: a path of object members from the root, '.'-separated ("profile.email").
struct FieldRule {
  std::string_view path;
  Reveal reveal;
};

// The projections support gets, by object kind (the management API's views of them).
extern const std::span<const FieldRule> kUserFields;
extern const std::span<const FieldRule> kFactorFields;
extern const std::span<const FieldRule> kGroupFields;

struct RedactedView {
  Json view;  // only the allowed fields, masked as their rule says
  // What was shown, for the System Log event: "path" for whole values, "path (masked)" for the
  // others, in rule order; fields absent from the input are not listed.
  std::vector<std::string> shown;
};

// Projects `object` through `rules`. A masked field whose value is not a string is left out.
RedactedView Redact(const Json& object, std::span<const FieldRule> rules);

// The masks, for other callers and tests. UTF-8 aware: a first character is never cut.
std::string MaskEmail(std::string_view email);  // "jane@example.com" -> "j***@example.com"
std::string MaskPhone(std::string_view phone);  // "+1 555 0199" -> "***99"
std::string Initial(std::string_view name);     // "Doe" -> "D."

}  // namespace custos::support
