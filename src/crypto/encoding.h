#pragma once

// Text encodings of binary data (RFC 4648).
//
// Decoders are strict and return nullopt for: a character outside the alphabet (including
// whitespace and NUL), a length no encoder produces, padding that is present but wrong, and
// non-zero unused bits in the last character (so each value has exactly one accepted encoding).

#include <optional>
#include <string>
#include <string_view>

namespace custos::crypto {

// URL-safe alphabet, no padding.
std::string Base64UrlEncode(std::string_view data);
// URL-safe alphabet only; padding optional.
std::optional<std::string> Base64UrlDecode(std::string_view text);
// Standard alphabet, padded.
std::string Base64Encode(std::string_view data);
// Standard alphabet; padding required (the length must be a multiple of 4).
std::optional<std::string> Base64Decode(std::string_view text);
// Upper case, no padding.
std::string Base32Encode(std::string_view data);
// Case-insensitive; padding optional.
std::optional<std::string> Base32Decode(std::string_view text);
// Lower case.
std::string HexEncode(std::string_view data);
// Either case.
std::optional<std::string> HexDecode(std::string_view text);

}  // namespace custos::crypto
