#include "crypto/random.h"

#include <algorithm>

#include <sodium.h>

#include <array>
#include <cstring>

#include "crypto/encoding.h"
#include "crypto/sodium_init.h"

namespace custos::crypto {
namespace {

constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr int kIdRandomChars = 17;
// The largest multiple of 62 that fits in a byte; bytes at or above it are redrawn so that every
// character is equally likely.
constexpr unsigned kBase62Limit = 256 - 256 % 62;

class KernelRandom final : public Random {
 public:
  KernelRandom() { internal::EnsureSodium(); }
  void Fill(void* out, size_t n) override { randombytes_buf(out, n); }
};

}  // namespace

std::string Random::Bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0) Fill(out.data(), n);
  return out;
}

std::string Random::Token(size_t n_bytes) { return Base64UrlEncode(Bytes(n_bytes)); }

std::string Random::Id(std::string_view prefix) {
  std::string id(prefix);
  id.reserve(prefix.size() + kIdRandomChars);
  int needed = kIdRandomChars;
  std::array<unsigned char, 24> pool;  // 17 draws plus room for the rare rejected byte.
  while (needed > 0) {
    Fill(pool.data(), pool.size());
    for (unsigned char b : pool) {
      if (needed == 0) break;
      if (b >= kBase62Limit) continue;
      id.push_back(kBase62[b % 62]);
      --needed;
    }
  }
  return id;
}

std::string Random::Uuid() {
  std::array<unsigned char, 16> b;
  Fill(b.data(), b.size());
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // variant 10xx (RFC 4122)
  std::string hex = HexEncode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string Random::UuidV7(absl::Time when) {
  std::array<unsigned char, 16> b;
  Fill(b.data(), b.size());
  const uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(0, absl::ToUnixMillis(when)));
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  b[6] = (b[6] & 0x0f) | 0x70;  // version 7
  b[8] = (b[8] & 0x3f) | 0x80;  // variant 10xx
  std::string hex = HexEncode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

Random& SystemRandom() {
  static KernelRandom* const random = new KernelRandom();  // never destroyed: used at exit too
  return *random;
}

SeededRandom::SeededRandom(uint64_t seed) {
  internal::EnsureSodium();
  std::memset(key_, 0, sizeof(key_));
  for (int i = 0; i < 8; ++i) key_[i] = static_cast<unsigned char>(seed >> (8 * i));
}

void SeededRandom::Fill(void* out, size_t n) {
  if (n == 0) return;
  unsigned char nonce[crypto_stream_chacha20_NONCEBYTES];
  {
    absl::MutexLock lock(&mu_);
    uint64_t c = counter_++;
    for (size_t i = 0; i < sizeof(nonce); ++i) nonce[i] = static_cast<unsigned char>(c >> (8 * i));
  }
  // Each call has its own nonce, so the keystream can be computed outside the lock.
  crypto_stream_chacha20(static_cast<unsigned char*>(out), n, nonce, key_);
}

}  // namespace custos::crypto
