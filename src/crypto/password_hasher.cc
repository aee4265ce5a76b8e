#include "crypto/password_hasher.h"

#include <sodium.h>

#include <cstring>

#include "absl/status/status.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/sodium_init.h"

namespace custos::crypto {
namespace {

bool ParamsInRange(const Argon2Params& p) {
  return p.iterations >= static_cast<int64_t>(crypto_pwhash_OPSLIMIT_MIN) &&
         static_cast<uint64_t>(p.iterations) <= crypto_pwhash_OPSLIMIT_MAX &&
         p.memory_kib >= static_cast<int64_t>(crypto_pwhash_MEMLIMIT_MIN / 1024) &&
         static_cast<uint64_t>(p.memory_kib) <= crypto_pwhash_MEMLIMIT_MAX / 1024;
}

// libsodium reads the encoded form as a C string; one with an embedded NUL is not ours.
bool AsCString(std::string_view encoded, std::string& out) {
  if (encoded.empty() || encoded.find('\0') != std::string_view::npos) return false;
  out.assign(encoded);
  return true;
}

// libsodium may be handed a null pointer for an empty string_view; give it a real one.
const char* Data(std::string_view s) { return s.empty() ? "" : s.data(); }

}  // namespace

PasswordHasher::PasswordHasher(Argon2Params params) : params_(params) {
  internal::EnsureSodium();
  // Unknown users are checked against this, so a miss costs as much as a hit. With parameters
  // that cannot hash it stays empty, and Hash reports the error.
  absl::StatusOr<std::string> dummy = Hash(Base64UrlEncode(SystemRandom().Bytes(18)));
  if (dummy.ok()) dummy_hash_ = *std::move(dummy);
}

absl::StatusOr<std::string> PasswordHasher::Hash(std::string_view password) const {
  if (!ParamsInRange(params_)) {
    return absl::InvalidArgumentError("Argon2id parameters out of range");
  }
  if (password.size() > crypto_pwhash_PASSWD_MAX) {
    return absl::InvalidArgumentError("password too long");
  }
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(
          out, Data(password), password.size(), static_cast<unsigned long long>(params_.iterations),
          static_cast<size_t>(params_.memory_kib) * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::UnavailableError("Argon2id could not get its memory");
  }
  return std::string(out);
}

bool PasswordHasher::Verify(std::string_view encoded, std::string_view password) const {
  std::string str;
  if (!AsCString(encoded, str)) return false;
  return crypto_pwhash_str_verify(str.c_str(), Data(password), password.size()) == 0;
}

bool PasswordHasher::NeedsRehash(std::string_view encoded) const {
  std::string str;
  if (!AsCString(encoded, str) || !str.starts_with("$argon2id$")) return true;
  // 1: other parameters, stronger or weaker; -1: unreadable. Both deserve a new hash.
  return crypto_pwhash_str_needs_rehash(str.c_str(),
                                        static_cast<unsigned long long>(params_.iterations),
                                        static_cast<size_t>(params_.memory_kib) * 1024) != 0;
}

}  // namespace custos::crypto
