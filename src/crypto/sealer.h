#pragma once

// Seals small secrets at rest (TOTP seeds, later signing keys) with XChaCha20-Poly1305
// (libsodium secretbox-style AEAD) under a 32-byte key kept in the data directory
// (`<data_dir>/seal.key`, created with mode 0600 on first start). The sealed form carries a key
// id byte and the nonce, so keys can be rotated later.

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

namespace custos::crypto {

// Thread-safe (immutable after construction).
class Sealer {
 public:
  // Loads the key file, or creates it (0600, 32 random bytes, fsynced; missing parent
  // directories are made 0700) when absent. kFailedPrecondition, naming the path, for a key
  // file that group or others may access or that is not exactly 32 bytes; other errors name the
  // path and the system error.
  static absl::StatusOr<std::unique_ptr<Sealer>> OpenOrCreate(const std::string& key_path);
  // For tests. nullptr unless `key32` is 32 bytes.
  static std::unique_ptr<Sealer> FromKey(std::string_view key32);
  ~Sealer();  // Wipes the key.

  Sealer(const Sealer&) = delete;
  Sealer& operator=(const Sealer&) = delete;

  // Sealed form: key id byte (1), 24-byte random nonce, ciphertext with 16-byte tag.
  std::string Seal(std::string_view plaintext, std::string_view associated_data) const;
  // kDataLoss when the sealed text was altered or truncated, names an unknown key id, or the
  // associated data differs.
  absl::StatusOr<std::string> Open(std::string_view sealed, std::string_view associated_data) const;

 private:
  explicit Sealer(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace custos::crypto
