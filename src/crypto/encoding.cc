#include "crypto/encoding.h"

#include <array>
#include <cstdint>

namespace custos::crypto {
namespace {

constexpr std::string_view kBase64Std =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kHex = "0123456789abcdef";

// Maps each byte to its value in `alphabet`, or -1.
std::array<int8_t, 256> ReverseTable(std::string_view alphabet, bool fold_case) {
  std::array<int8_t, 256> table;
  table.fill(-1);
  for (size_t i = 0; i < alphabet.size(); ++i) {
    auto c = static_cast<unsigned char>(alphabet[i]);
    table[c] = static_cast<int8_t>(i);
    if (fold_case && c >= 'A' && c <= 'Z') table[c - 'A' + 'a'] = static_cast<int8_t>(i);
  }
  return table;
}

// Removes trailing '=' padding, which must make the text a whole number of `block` characters
// when present. Returns false when the padding is malformed.
bool StripPadding(std::string_view& text, size_t block) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '=') --end;
  size_t pads = text.size() - end;
  if (pads == 0) return true;
  if (text.size() % block != 0 || pads >= block) return false;
  text = text.substr(0, end);
  return true;
}

std::string EncodeBits(std::string_view data, std::string_view alphabet, int bits_per_char,
                       size_t pad_block) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  const uint32_t mask = (1u << bits_per_char) - 1;
  for (unsigned char c : data) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= bits_per_char) {
      bits -= bits_per_char;
      out.push_back(alphabet[(buffer >> bits) & mask]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(buffer << (bits_per_char - bits)) & mask]);
  if (pad_block > 0) {
    while (out.size() % pad_block != 0) out.push_back('=');
  }
  return out;
}

// Decodes unpadded text. Rejects characters outside the alphabet, lengths that no encoder
// produces, and non-zero unused bits in the last character (so each value has one encoding).
std::optional<std::string> DecodeBits(std::string_view text, const std::array<int8_t, 256>& table,
                                      int bits_per_char) {
  std::string out;
  out.reserve(text.size() * bits_per_char / 8);
  uint32_t buffer = 0;
  int bits = 0;
  for (char ch : text) {
    int8_t v = table[static_cast<unsigned char>(ch)];
    if (v < 0) return std::nullopt;
    buffer = (buffer << bits_per_char) | static_cast<uint32_t>(v);
    bits += bits_per_char;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // Leftover bits are padding: fewer than a whole character's worth, and all zero.
  if (bits >= bits_per_char) return std::nullopt;
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::string Base64UrlEncode(std::string_view data) { return EncodeBits(data, kBase64Url, 6, 0); }

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  static const auto table = ReverseTable(kBase64Url, false);
  if (!StripPadding(text, 4)) return std::nullopt;
  return DecodeBits(text, table, 6);
}

std::string Base64Encode(std::string_view data) { return EncodeBits(data, kBase64Std, 6, 4); }

std::optional<std::string> Base64Decode(std::string_view text) {
  static const auto table = ReverseTable(kBase64Std, false);
  // Padding is mandatory here, so an unpadded text (which StripPadding would accept) is refused.
  if (text.size() % 4 != 0) return std::nullopt;
  if (!StripPadding(text, 4)) return std::nullopt;
  return DecodeBits(text, table, 6);
}

std::string Base32Encode(std::string_view data) { return EncodeBits(data, kBase32, 5, 0); }

std::optional<std::string> Base32Decode(std::string_view text) {
  static const auto table = ReverseTable(kBase32, true);
  if (!StripPadding(text, 8)) return std::nullopt;
  return DecodeBits(text, table, 5);
}

std::string HexEncode(std::string_view data) { return EncodeBits(data, kHex, 4, 0); }

std::optional<std::string> HexDecode(std::string_view text) {
  static const auto table = ReverseTable("0123456789ABCDEF", true);
  return DecodeBits(text, table, 4);
}

}  // namespace custos::crypto
