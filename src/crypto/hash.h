#pragma once

// SHA-256, HMAC-SHA-256/SHA-1 (OpenSSL) and constant-time comparison.

#include <string>
#include <string_view>

namespace custos::crypto {

// Raw 32-byte digest.
std::string Sha256(std::string_view data);
// Lower-case hex of the digest; what the store keeps for high-entropy secrets (tokens).
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
std::string HmacSha1(std::string_view key, std::string_view data);
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace custos::crypto
