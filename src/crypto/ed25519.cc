#include "crypto/ed25519.h"

#include <sodium.h>

#include "absl/status/status.h"
#include "crypto/sodium_init.h"

namespace custos::crypto::ed25519 {
namespace {

static_assert(kSeedSize == crypto_sign_SEEDBYTES);
static_assert(kPublicKeySize == crypto_sign_PUBLICKEYBYTES);
static_assert(kSignatureSize == crypto_sign_BYTES);

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// libsodium's 64-byte secret key (seed || public key), wiped when it leaves scope.
class ExpandedKey {
 public:
  ExpandedKey() = default;
  ExpandedKey(const ExpandedKey&) = delete;
  ExpandedKey& operator=(const ExpandedKey&) = delete;
  ~ExpandedKey() { sodium_memzero(secret_, sizeof(secret_)); }

  absl::Status Derive(std::string_view seed) {
    if (seed.size() != kSeedSize) {
      return absl::InvalidArgumentError("ed25519: the seed must be 32 bytes");
    }
    internal::EnsureSodium();
    crypto_sign_seed_keypair(public_, secret_, Bytes(seed));
    return absl::OkStatus();
  }

  const unsigned char* secret() const { return secret_; }
  std::string public_key() const {
    return std::string(reinterpret_cast<const char*>(public_), sizeof(public_));
  }

 private:
  unsigned char public_[crypto_sign_PUBLICKEYBYTES] = {};
  unsigned char secret_[crypto_sign_SECRETKEYBYTES] = {};
};

}  // namespace

std::string GenerateSeed(Random& random) { return random.Bytes(kSeedSize); }

absl::StatusOr<std::string> PublicKeyFromSeed(std::string_view seed) {
  ExpandedKey key;
  if (absl::Status st = key.Derive(seed); !st.ok()) return st;
  return key.public_key();
}

absl::StatusOr<std::string> Sign(std::string_view seed, std::string_view message) {
  ExpandedKey key;
  if (absl::Status st = key.Derive(seed); !st.ok()) return st;
  std::string signature(kSignatureSize, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr, Bytes(message),
                       message.size(), key.secret());
  return signature;
}

bool Verify(std::string_view public_key, std::string_view message, std::string_view signature) {
  if (public_key.size() != kPublicKeySize || signature.size() != kSignatureSize) return false;
  internal::EnsureSodium();
  return crypto_sign_verify_detached(Bytes(signature), Bytes(message), message.size(),
                                     Bytes(public_key)) == 0;
}

}  // namespace custos::crypto::ed25519
