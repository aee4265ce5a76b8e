#include "crypto/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>

#include "crypto/encoding.h"

namespace custos::crypto {
namespace {

// OpenSSL may reject a null pointer even with length 0, and an empty string_view may hold one.
const unsigned char* Ptr(std::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// These fail only when OpenSSL itself is broken (no SHA-256, no memory); nothing sensible can
// continue after that.
[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "custos: OpenSSL %s failed\n", what);
  std::abort();
}

std::string Hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(md, Ptr(key), static_cast<int>(key.size()), Ptr(data), data.size(), out, &len) ==
      nullptr) {
    Fatal("HMAC");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string Sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(Ptr(data), data.size(), out, &len, EVP_sha256(), nullptr) != 1) {
    Fatal("SHA-256");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Sha256Hex(std::string_view data) { return HexEncode(Sha256(data)); }

std::string HmacSha256(std::string_view key, std::string_view data) {
  return Hmac(EVP_sha256(), key, data);
}

std::string HmacSha1(std::string_view key, std::string_view data) {
  return Hmac(EVP_sha1(), key, data);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length is not secret (digests and codes have fixed lengths); the contents are.
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(Ptr(a), Ptr(b), a.size()) == 0;
}

}  // namespace custos::crypto
