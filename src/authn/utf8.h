#pragma once

// Internal to the authn module: strict UTF-8 (RFC 3629) decoding, for counting the characters
// of a password and for cutting untrusted text to a size that is safe to keep.

#include <optional>
#include <string_view>

namespace custos::authn::internal {

// The number of code points in `text`, or nullopt when it is not well-formed UTF-8: overlong
// forms, surrogates (U+D800..U+DFFF), values above U+10FFFF and truncated sequences are refused.
std::optional<int> CountCodePoints(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a
// multi-byte sequence.
std::string_view Utf8Prefix(std::string_view text, size_t max_bytes);

}  // namespace custos::authn::internal
