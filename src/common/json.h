#pragma once

// JSON helpers over nlohmann::json. nlohmann throws; these convert to absl::Status at the edge.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace custos {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Parses a request body. Rejects invalid UTF-8, duplicate-free parsing is not enforced by
// nlohmann (the last duplicate wins), nesting deeper than 64 levels is refused.
absl::StatusOr<Json> ParseJson(std::string_view text);

// Serialises; invalid UTF-8 in strings is replaced rather than thrown on.
std::string DumpJson(const Json& j);
std::string DumpJson(const OrderedJson& j);

}  // namespace custos
