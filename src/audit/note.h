#pragma once

// C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 keys: the envelope of the System
// Log's checkpoints.
//
// A note is a body (text ending in a newline), a blank line, then one or more signature lines
//   "— <key name> <base64(4-byte big-endian key id || 64-byte signature)>\n"
// where "—" is U+2014 EM DASH. Each signature covers the body bytes, final newline included.
// A key is named by a non-empty string without '+' or whitespace (usually "host/path"), and
// identified by KeyId(name, public key).
//
// Key texts:
//   verifier key ("vkey"): "<name>+<8 hex digits of key id>+<base64(0x01 || public key)>"
//   signer key:            "PRIVATE+KEY+<name>+<8 hex digits>+<base64(0x01 || 32-byte seed)>"
//
// Error codes: kInvalidArgument for malformed input (keys, bodies, notes);
// kUnauthenticated when a note carries no valid signature by any of the given keys, or a
// signature by one of them that does not verify.
//
// All functions are pure and thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace custos::audit::note {

// An Ed25519 verifier key.
struct VerifierKey {
  std::string name;
  uint32_t key_id = 0;
  std::string public_key;  // 32 raw bytes
};

// An Ed25519 signer key. Holds a secret: never log it.
struct SignerKey {
  std::string name;
  uint32_t key_id = 0;
  std::string seed;  // 32 raw bytes
};

// First 4 bytes (big-endian) of SHA-256(name || 0x0A || 0x01 || public_key).
uint32_t KeyId(std::string_view name, std::string_view public_key);

// True when `name` may name a key: non-empty, valid UTF-8, no '+', no whitespace or control
// characters.
bool IsValidKeyName(std::string_view name);

// The vkey text for (name, public_key). kInvalidArgument for a bad name or a public key that is
// not 32 bytes.
absl::StatusOr<std::string> FormatVerifierKey(std::string_view name, std::string_view public_key);

// Parses a vkey text; checks the name, the algorithm byte (Ed25519 only), the key length and
// that the key id matches the name and key.
absl::StatusOr<VerifierKey> ParseVerifierKey(std::string_view vkey);

// The signer key text for (name, seed), and its parser (same checks as for vkeys).
absl::StatusOr<std::string> FormatSignerKey(std::string_view name, std::string_view seed);
absl::StatusOr<SignerKey> ParseSignerKey(std::string_view skey);

// The full note: `body`, a blank line, and one signature line by the key (name, seed).
// kInvalidArgument when the body is empty or does not end in a newline, the name is invalid or
// the seed is not 32 bytes.
absl::StatusOr<std::string> Sign(std::string_view body, std::string_view name,
                                 std::string_view seed);

struct OpenedNote {
  std::string body;                    // including its final newline
  std::vector<std::string> signed_by;  // names of the given keys whose signature verified
};

// Checks `note` against `keys`. Signature lines by keys not in `keys` (by name and key id) are
// ignored but must be well formed. Succeeds only when at least one signature by a key in `keys`
// verifies and none by a key in `keys` fails; more than 100 signature lines, or two lines by the
// same key, make the note malformed.
absl::StatusOr<OpenedNote> Open(std::string_view note, const std::vector<VerifierKey>& keys);

}  // namespace custos::audit::note
