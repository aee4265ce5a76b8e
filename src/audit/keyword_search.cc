#include "audit/keyword_search.h"

#include <fmt/format.h>

#include "absl/status/status.h"

namespace custos::audit {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Characters, not bytes: a UTF-8 continuation byte does not start one.
size_t CharacterCount(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

// Whether `needle` (lower case) occurs in `haystack`, ignoring ASCII case.
bool ContainsFolded(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && Lower(haystack[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

template <typename J>
bool AnyString(const J& v, std::string_view keyword) {
  if (v.is_string()) return ContainsFolded(v.template get_ref<const std::string&>(), keyword);
  if (v.is_object() || v.is_array()) {
    for (const J& child : v) {
      if (AnyString(child, keyword)) return true;
    }
  }
  return false;
}

template <typename J>
bool MatchesAll(const std::vector<std::string>& keywords, const J& value) {
  for (const std::string& keyword : keywords) {
    if (!AnyString(value, keyword)) return false;
  }
  return true;
}

}  // namespace

bool KeywordSearch::Matches(const Json& value) const { return MatchesAll(keywords_, value); }
bool KeywordSearch::Matches(const OrderedJson& value) const { return MatchesAll(keywords_, value); }

absl::StatusOr<KeywordSearch> ParseKeywords(std::string_view q) {
  KeywordSearch search;
  size_t i = 0;
  while (i < q.size()) {
    while (i < q.size() && IsSpace(q[i])) ++i;
    size_t start = i;
    while (i < q.size() && !IsSpace(q[i])) ++i;
    if (i == start) break;
    std::string_view keyword = q.substr(start, i - start);
    if (search.keywords_.size() == kMaxKeywords) {
      return absl::InvalidArgumentError(
          fmt::format("q must have at most {} keywords", kMaxKeywords));
    }
    if (CharacterCount(keyword) > kMaxKeywordLength) {
      return absl::InvalidArgumentError(
          fmt::format("each keyword in q must be at most {} characters", kMaxKeywordLength));
    }
    std::string lowered(keyword);
    for (char& c : lowered) c = Lower(c);
    search.keywords_.push_back(std::move(lowered));
  }
  return search;
}

}  // namespace custos::audit
