#pragma once

// SCIM-style filter expressions (RFC 7644 section 3.4.2.2), as the management API takes them in
// `filter` for GET /api/v1/logs and for user search:
//
//   eventType eq "user.session.start" and (outcome.result eq "FAILURE" or not target.id pr)
//
// Grammar (docs/system-log.md has it in EBNF): attribute paths (dotted), the comparison
// operators eq ne gt ge lt le sw co ew and the presence operator pr, the logical operators
// not > and > or in that order of precedence, parentheses, and the values "string" (JSON
// escapes), numbers, true, false, null. Operator words, true, false and null are
// case-insensitive; attribute names match exactly, or case-insensitively when no key matches
// exactly.
//
// Matching over a JSON value:
// - A path walks into objects; where it meets an array it continues into every element, and
//   the comparison holds when it holds for ANY value reached (target.id eq "x" matches an event
//   with x among its targets).
// - eq compares exactly (case-sensitive strings, numbers by value, true/false, null matches a
//   null or absent attribute). ne is the negation of eq: target.id ne "x" matches events with
//   no target x.
// - sw, co, ew compare strings case-insensitively (ASCII).
// - gt ge lt le order numbers by value, RFC 3339 date-times by instant, other strings by bytes.
// - pr holds when some value reached is neither null, "", [] nor {}.
// - A comparison between different JSON types does not hold.
//
// Limits: at most kMaxFilterLength characters and kMaxFilterDepth levels of nesting ('(' and
// 'not'). Errors are absl::InvalidArgumentError("filter: ... at position N"), N being the
// 0-based byte offset of the offending token in the expression.
//
// A Filter is an immutable value: copyable, and safe to use from any number of threads.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json.h"

namespace custos::audit {

inline constexpr size_t kMaxFilterLength = 2048;
inline constexpr int kMaxFilterDepth = 32;

class Filter {
 public:
  // A filter that matches everything.
  Filter();
  ~Filter();
  Filter(const Filter&);
  Filter& operator=(const Filter&);
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  bool Matches(const Json& value) const;
  bool Matches(const OrderedJson& value) const;

  // Fully parenthesised canonical form, e.g. `(a eq "x" or (b pr and not (c gt 1)))`; the
  // match-everything filter prints as "".
  std::string ToString() const;

  // A node of the expression tree; defined in filter.cc.
  struct Node;

 private:
  friend class FilterParser;

  template <typename J>
  bool Eval(int node, const J& value) const;
  void Print(int node, std::string& out) const;

  std::vector<Node> nodes_;  // empty: matches everything
  int root_ = -1;
};

// Parses `text`. An empty or all-blank expression is an error; callers treat an absent filter
// as Filter().
absl::StatusOr<Filter> ParseFilter(std::string_view text);

}  // namespace custos::audit
