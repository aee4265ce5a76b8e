#include "support/jws.h"

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "crypto/encoding.h"

namespace custos::support {

std::optional<CompactJwsParts> SplitCompactJws(std::string_view jws) {
  const size_t dot1 = jws.find('.');
  if (dot1 == std::string_view::npos || dot1 == 0) return std::nullopt;
  const size_t dot2 = jws.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || dot2 == dot1 + 1) return std::nullopt;
  if (jws.find('.', dot2 + 1) != std::string_view::npos) return std::nullopt;
  return CompactJwsParts{.header = jws.substr(0, dot1),
                         .payload = jws.substr(dot1 + 1, dot2 - dot1 - 1),
                         .signature = jws.substr(dot2 + 1),
                         .signing_input = jws.substr(0, dot2)};
}

std::optional<Json> DecodeJwsObject(std::string_view part) {
  std::optional<std::string> raw = crypto::Base64UrlDecode(part);
  if (!raw) return std::nullopt;
  absl::StatusOr<Json> json = ParseJson(*raw);
  if (!json.ok() || !json->is_object()) return std::nullopt;
  return *std::move(json);
}

}  // namespace custos::support
