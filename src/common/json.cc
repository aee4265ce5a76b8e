#include "common/json.h"

#include "absl/strings/str_cat.h"

namespace custos {
namespace {

constexpr int kMaxDepth = 64;

}  // namespace

absl::StatusOr<Json> ParseJson(std::string_view text) {
  int depth = 0;
  bool too_deep = false;
  Json::parser_callback_t cb = [&](int d, Json::parse_event_t event, Json&) {
    if (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) {
      depth = d + 1;
      if (depth > kMaxDepth) too_deep = true;
    }
    return !too_deep;
  };
  Json j = Json::parse(text, cb, /*allow_exceptions=*/false);
  if (too_deep) return absl::InvalidArgumentError("JSON nested too deeply");
  if (j.is_discarded()) return absl::InvalidArgumentError("request body is not valid JSON");
  return j;
}

std::string DumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string DumpJson(const OrderedJson& j) {
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace custos
