#pragma once

// Seals small secrets at rest (TOTP seeds, later signing keys) with XChaCha20-Poly1305
// (libsodium secretbox-style AEAD) under a 32-byte key kept in the data directory
// (`<data_dir>/seal.key`, created with mode 0600 on first start). The sealed form carries a key
// id byte and the nonce, so keys can be rotated later.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace custos::crypto {

// Thread-safe (immutable after construction).
class Sealer {
 public:
  // Loads the key file, or creates it (0600) when absent. Refuses a key file that others can
  // read or that has the wrong size.
  static absl::StatusOr<std::unique_ptr<Sealer>> OpenOrCreate(const std::string& key_path);
  // For tests.
  static std::unique_ptr<Sealer> FromKey(std::string_view key32);

  std::string Seal(std::string_view plaintext, std::string_view associated_data) const;
  // kDataLoss when the sealed text was altered or the associated data differs.
  absl::StatusOr<std::string> Open(std::string_view sealed,
                                   std::string_view associated_data) const;

 private:
  explicit Sealer(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace custos::crypto
