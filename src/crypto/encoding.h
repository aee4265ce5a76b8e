#pragma once

// Text encodings of binary data.

#include <optional>
#include <string>
#include <string_view>

namespace custos::crypto {

std::string Base64UrlEncode(std::string_view data);  // no padding
std::optional<std::string> Base64UrlDecode(std::string_view text);  // padding optional
std::string Base64Encode(std::string_view data);  // standard alphabet, padded
std::string Base32Encode(std::string_view data);  // RFC 4648, upper case, no padding
std::optional<std::string> Base32Decode(std::string_view text);  // case-insensitive
std::string HexEncode(std::string_view data);  // lower case
std::optional<std::string> HexDecode(std::string_view text);

}  // namespace custos::crypto
