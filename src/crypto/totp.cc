#include "crypto/totp.h"

#include <fmt/format.h>

#include <array>

#include "crypto/encoding.h"
#include "crypto/hash.h"

namespace custos::crypto {
namespace {

constexpr uint32_t kModulus = 1'000'000;  // 10^kTotpDigits
static_assert(kTotpDigits == 6);

bool IsSixDigits(std::string_view code) {
  if (code.size() != static_cast<size_t>(kTotpDigits)) return false;
  for (char c : code) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// RFC 3986 unreserved characters stay; everything else, byte by byte, becomes %XX.
std::string PercentEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

int64_t TotpStep(absl::Time t) {
  // Floor division, so times before 1970 still map to the step that contains them.
  int64_t s = absl::ToUnixSeconds(t);
  int64_t step = s / kTotpPeriodSeconds;
  if (s % kTotpPeriodSeconds < 0) --step;
  return step;
}

std::string TotpCode(std::string_view secret, int64_t step) {
  // RFC 4226 section 5.3: HMAC-SHA-1 over the 8-byte big-endian counter, dynamic truncation.
  std::array<char, 8> counter;
  auto c = static_cast<uint64_t>(step);
  for (int i = 7; i >= 0; --i) {
    counter[i] = static_cast<char>(c & 0xff);
    c >>= 8;
  }
  std::string mac = HmacSha1(secret, std::string_view(counter.data(), counter.size()));
  auto byte = [&mac](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(mac[i]));
  };
  size_t offset = byte(19) & 0x0f;
  uint32_t binary = ((byte(offset) & 0x7f) << 24) | (byte(offset + 1) << 16) |
                    (byte(offset + 2) << 8) | byte(offset + 3);
  return fmt::format("{:06d}", binary % kModulus);
}

std::optional<int64_t> VerifyTotp(std::string_view secret, std::string_view code, absl::Time now,
                                  int skew_steps, int64_t last_used_step) {
  if (!IsSixDigits(code)) return std::nullopt;
  if (skew_steps < 0) skew_steps = 0;
  const int64_t current = TotpStep(now);
  std::optional<int64_t> accepted;
  // Every candidate is computed and compared, matched or not, so the time taken does not say
  // which step (if any) matched. The earliest fresh match wins, leaving later steps usable.
  for (int64_t step = current - skew_steps; step <= current + skew_steps; ++step) {
    bool match = ConstantTimeEquals(TotpCode(secret, step), code);
    if (match && step > last_used_step && !accepted.has_value()) accepted = step;
  }
  return accepted;
}

std::string TotpUri(std::string_view issuer, std::string_view account, std::string_view secret) {
  std::string enc_issuer = PercentEncode(issuer);
  return fmt::format("otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={}&period={}",
                     enc_issuer, PercentEncode(account), Base32Encode(secret), enc_issuer,
                     kTotpDigits, kTotpPeriodSeconds);
}

}  // namespace custos::crypto
