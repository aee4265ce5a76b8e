#pragma once

// The compact serialisation of a JWS (RFC 7515 7.1): BASE64URL(header) "." BASE64URL(payload)
// "." BASE64URL(signature). Shared by the verifiers of this folder (DPoP proofs, posture
// reports), which make their own checks of the header and claims.
//
// Pure functions; thread-safe.

#include <optional>
#include <string_view>

#include "common/json.h"

namespace custos::support {

// The three encoded parts of a compact JWS, as views into the text they were split from.
struct CompactJwsParts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // header "." payload: what the signature covers
};

// Splits `jws` at its two dots. nullopt unless there are exactly three parts and the header and
// payload are not empty (the signature may be: an unsigned JWS then fails verification).
std::optional<CompactJwsParts> SplitCompactJws(std::string_view jws);

// Decodes a header or payload part: base64url of a JSON object. nullopt for anything else.
std::optional<Json> DecodeJwsObject(std::string_view part);

}  // namespace custos::support
