#include "audit/checkpoint.h"

#include <fmt/format.h>

#include <limits>
#include <optional>

#include "absl/status/status.h"
#include "crypto/encoding.h"

namespace custos::audit {
namespace {

constexpr size_t kRootHashSize = 32;

absl::Status Malformed(std::string_view why) {
  return absl::InvalidArgumentError(fmt::format("malformed checkpoint: {}", why));
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace

absl::StatusOr<std::string> FormatCheckpoint(const Checkpoint& checkpoint) {
  if (checkpoint.origin.empty() || checkpoint.origin.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError("checkpoint origin must be one non-empty line");
  }
  if (checkpoint.root_hash.size() != kRootHashSize) {
    return absl::InvalidArgumentError("checkpoint root hash must be 32 bytes");
  }
  std::string body = fmt::format("{}\n{}\n{}\n", checkpoint.origin, checkpoint.size,
                                 crypto::Base64Encode(checkpoint.root_hash));
  for (const std::string& extension : checkpoint.extensions) {
    if (extension.empty() || extension.find('\n') != std::string::npos) {
      return absl::InvalidArgumentError("checkpoint extension must be one non-empty line");
    }
    body.append(extension).push_back('\n');
  }
  return body;
}

absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view body) {
  if (body.empty() || body.back() != '\n') return Malformed("does not end with a newline");
  std::vector<std::string_view> lines;
  while (!body.empty()) {
    size_t eol = body.find('\n');
    lines.push_back(body.substr(0, eol));
    body.remove_prefix(eol + 1);
  }
  if (lines.size() < 3) return Malformed("expected origin, tree size and root hash lines");

  Checkpoint checkpoint;
  if (lines[0].empty()) return Malformed("empty origin");
  checkpoint.origin = std::string(lines[0]);
  std::optional<uint64_t> size = ParseSize(lines[1]);
  if (!size) {
    return Malformed("tree size must be a decimal number without leading zeros that fits 64 bits");
  }
  checkpoint.size = *size;
  std::optional<std::string> root = crypto::Base64Decode(lines[2]);
  if (!root) return Malformed("root hash is not valid base64");
  if (root->size() != kRootHashSize) return Malformed("root hash is not 32 bytes");
  checkpoint.root_hash = std::move(*root);
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return Malformed("empty extension line");
    checkpoint.extensions.emplace_back(lines[i]);
  }
  return checkpoint;
}

}  // namespace custos::audit
