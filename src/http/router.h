#pragma once

// Matches a request's method and path against route patterns.
//
// A pattern is a '/'-separated list of segments; a segment is either literal (matched exactly
// against the percent-decoded path segment) or "{name}" (matches any one non-empty segment and
// binds its decoded value). When several patterns match a path, the most specific wins:
// comparing segment by segment, the first literal-versus-parameter difference decides
// ("/users/me" beats "/users/{id}"). The last segment of a pattern may be "{name...}": it matches
// one or more remaining segments and binds them, decoded, joined with '/' ("/log/{path...}"
// binds "tile/0/x001/002" for "/log/tile/0/x001/002"); a pattern without one beats it. A path that
// some pattern matches but none for the method gives kMethodNotAllowed with the methods that would
// have matched.

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "api/http_types.h"

namespace custos::http {

// Decodes %XX escapes; with `plus_as_space`, '+' becomes ' ' (query strings). A '%' not
// followed by two hex digits, or an escape that decodes to NUL, is an error.
absl::StatusOr<std::string> PercentDecode(std::string_view in, bool plus_as_space);

// Parses "a=1&b=x+y&c" into decoded pairs. The first of repeated names wins; a name without
// '=' maps to ""; empty names are skipped.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ParseQuery(std::string_view query);

struct RouteMatch {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  const api::Route* route = nullptr;                          // kFound: owned by the Router
  absl::flat_hash_map<std::string, std::string> path_params;  // kFound
  std::vector<std::string> allowed_methods;                   // kMethodNotAllowed: sorted, unique
  std::string decoded_path;                                   // always, when the path decodes
};

// Immutable after Create; thread-safe for concurrent Match calls.
class Router {
 public:
  // Fails on a pattern that does not start with '/', a malformed or repeated {name}, an empty
  // method, or two routes with the same method and the same pattern shape.
  static absl::StatusOr<Router> Create(std::vector<api::Route> routes);

  // `raw_path` is the request target's path as received (percent-encoded, no query). Fails
  // with kInvalidArgument when it does not start with '/' or does not decode.
  absl::StatusOr<RouteMatch> Match(std::string_view method, std::string_view raw_path) const;

 private:
  struct Segment {
    bool is_param = false;
    bool is_rest = false;  // "{name...}": the rest of the path
    std::string text;      // literal text, or the parameter name
  };
  struct Entry {
    api::Route route;
    std::vector<Segment> segments;
  };
  explicit Router(std::vector<Entry> entries) : entries_(std::move(entries)) {}
  static bool MoreSpecific(const Entry& a, const Entry& b);

  std::vector<Entry> entries_;
};

}  // namespace custos::http
