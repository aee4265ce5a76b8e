#pragma once

// Keyword search, the `q` parameter of GET /api/v1/logs: `q=jane failure` keeps the events in
// which every keyword occurs, case-insensitively (ASCII), within some string value of the event
// (any field, at any depth; object keys, numbers and booleans are not searched). Keywords are
// separated by spaces; there are at most kMaxKeywords, each at most kMaxKeywordLength
// characters. Because a keyword matches inside a value, "XOxBw" matches the value
// "XOxBw-2JIRnCFd0gG0GjHAAABjY".
//
// A KeywordSearch is an immutable value: copyable, and safe to use from any number of threads.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json.h"

namespace custos::audit {

inline constexpr size_t kMaxKeywords = 10;
inline constexpr size_t kMaxKeywordLength = 40;

class KeywordSearch {
 public:
  // Matches everything.
  KeywordSearch() = default;

  bool Matches(const Json& value) const;
  bool Matches(const OrderedJson& value) const;

  // Lower-cased, in the order given.
  const std::vector<std::string>& keywords() const { return keywords_; }

 private:
  friend absl::StatusOr<KeywordSearch> ParseKeywords(std::string_view q);

  std::vector<std::string> keywords_;
};

// Splits `q` on spaces. An empty or all-blank `q` matches everything. Errors:
// absl::InvalidArgumentError when there are too many keywords or one is too long.
absl::StatusOr<KeywordSearch> ParseKeywords(std::string_view q);

}  // namespace custos::audit
