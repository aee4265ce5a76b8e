#pragma once

// C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) bodies: the statement a log signs,
// carried inside a signed note (audit/note.h).
//
//   <origin>\n
//   <tree size, decimal>\n
//   <base64 (standard, padded) of the 32-byte root hash>\n
//   [<extension line>\n ...]
//
// Custos emits no extension lines but keeps those it parses. All functions are pure and
// thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace custos::audit {

struct Checkpoint {
  std::string origin;  // unique log identity, e.g. "id.example.com/t/acme"
  uint64_t size = 0;
  std::string root_hash;                // 32 raw bytes
  std::vector<std::string> extensions;  // each without its newline

  bool operator==(const Checkpoint&) const = default;
};

// The body text. kInvalidArgument when the origin is empty or holds a newline, the root hash is
// not 32 bytes, or an extension line is empty or holds a newline.
absl::StatusOr<std::string> FormatCheckpoint(const Checkpoint& checkpoint);

// Parses a body (the text a signed note's signatures cover). kInvalidArgument, naming the
// problem, unless: the body ends in a newline; the origin is non-empty; the size is decimal
// digits without leading zeros (except "0") that fit 64 bits; the root hash is padded standard
// base64 of exactly 32 bytes; no extension line is empty.
absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view body);

}  // namespace custos::audit
