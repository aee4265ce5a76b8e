#include "http/router.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include <fmt/format.h>

namespace custos::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "/a/b" -> {"a", "b"}; "/" -> {""}; "/a/" -> {"a", ""}.
std::vector<std::string_view> SplitSegments(std::string_view path) {
  std::vector<std::string_view> out;
  path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool IsParamSegment(std::string_view s) {
  return s.size() >= 2 && s.front() == '{' && s.back() == '}';
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size() || HexValue(in[i + 1]) < 0 || HexValue(in[i + 2]) < 0) {
        return absl::InvalidArgumentError("malformed percent-encoding");
      }
      c = static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
      if (c == '\0') return absl::InvalidArgumentError("percent-encoded NUL");
      i += 2;
    } else if (c == '+' && plus_as_space) {
      c = ' ';
    }
    out += c;
  }
  return out;
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ParseQuery(std::string_view query) {
  absl::flat_hash_map<std::string, std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    absl::StatusOr<std::string> name = PercentDecode(part.substr(0, eq), true);
    if (!name.ok()) return name.status();
    absl::StatusOr<std::string> value =
        eq == std::string_view::npos ? std::string() : PercentDecode(part.substr(eq + 1), true);
    if (!value.ok()) return value.status();
    if (name->empty()) continue;
    out.try_emplace(*std::move(name), *std::move(value));
  }
  return out;
}

absl::StatusOr<Router> Router::Create(std::vector<api::Route> routes) {
  std::vector<Entry> entries;
  entries.reserve(routes.size());
  for (api::Route& route : routes) {
    if (route.method.empty()) {
      return absl::InvalidArgumentError(fmt::format("route {} has no method", route.pattern));
    }
    if (route.pattern.empty() || route.pattern.front() != '/') {
      return absl::InvalidArgumentError(
          fmt::format("route pattern '{}' must start with '/'", route.pattern));
    }
    Entry entry;
    std::vector<std::string> names;
    const std::vector<std::string_view> parts = SplitSegments(route.pattern);
    for (size_t part = 0; part < parts.size(); ++part) {
      std::string_view s = parts[part];
      Segment seg;
      if (IsParamSegment(s)) {
        seg.is_param = true;
        seg.text = std::string(s.substr(1, s.size() - 2));
        if (seg.text.ends_with("...")) {
          if (part + 1 != parts.size()) {
            return absl::InvalidArgumentError(fmt::format(
                "route pattern '{}': only the last segment may be {{name...}}", route.pattern));
          }
          seg.is_rest = true;
          seg.text.resize(seg.text.size() - 3);
        }
        bool valid = !seg.text.empty();
        for (char c : seg.text) {
          valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
        }
        if (!valid) {
          return absl::InvalidArgumentError(
              fmt::format("route pattern '{}' has a bad parameter name", route.pattern));
        }
        if (std::find(names.begin(), names.end(), seg.text) != names.end()) {
          return absl::InvalidArgumentError(
              fmt::format("route pattern '{}' repeats {{{}}}", route.pattern, seg.text));
        }
        names.push_back(seg.text);
      } else {
        if (s.find_first_of("{}") != std::string_view::npos) {
          return absl::InvalidArgumentError(fmt::format(
              "route pattern '{}': a parameter must be a whole segment", route.pattern));
        }
        seg.text = std::string(s);
      }
      entry.segments.push_back(std::move(seg));
    }
    for (const Entry& other : entries) {
      bool same_shape =
          other.route.method == route.method && other.segments.size() == entry.segments.size();
      for (size_t i = 0; same_shape && i < entry.segments.size(); ++i) {
        const Segment& a = other.segments[i];
        const Segment& b = entry.segments[i];
        same_shape =
            a.is_param == b.is_param && a.is_rest == b.is_rest && (a.is_param || a.text == b.text);
      }
      if (same_shape) {
        return absl::InvalidArgumentError(fmt::format("route {} {} is declared twice (as {})",
                                                      route.method, route.pattern,
                                                      other.route.pattern));
      }
    }
    entry.route = std::move(route);
    entries.push_back(std::move(entry));
  }
  return Router(std::move(entries));
}

bool Router::MoreSpecific(const Entry& a, const Entry& b) {
  // Callers only compare entries that matched the same path: their segments line up until one
  // ends in a rest parameter.
  for (size_t i = 0; i < a.segments.size() && i < b.segments.size(); ++i) {
    if (a.segments[i].is_rest != b.segments[i].is_rest) return !a.segments[i].is_rest;
    if (a.segments[i].is_param != b.segments[i].is_param) return !a.segments[i].is_param;
  }
  return false;
}

absl::StatusOr<RouteMatch> Router::Match(std::string_view method, std::string_view raw_path) const {
  if (raw_path.empty() || raw_path.front() != '/') {
    return absl::InvalidArgumentError("request path must start with '/'");
  }
  RouteMatch result;
  std::vector<std::string> segments;
  for (std::string_view raw : SplitSegments(raw_path)) {
    absl::StatusOr<std::string> decoded = PercentDecode(raw, /*plus_as_space=*/false);
    if (!decoded.ok()) return decoded.status();
    result.decoded_path += '/';
    result.decoded_path += *decoded;
    segments.push_back(*std::move(decoded));
  }

  const Entry* best = nullptr;
  for (const Entry& e : entries_) {
    const bool has_rest = !e.segments.empty() && e.segments.back().is_rest;
    if (has_rest ? segments.size() < e.segments.size() : e.segments.size() != segments.size()) {
      continue;
    }
    bool matches = true;
    for (size_t i = 0; matches && i < e.segments.size(); ++i) {
      const Segment& seg = e.segments[i];
      matches = seg.is_param ? !segments[i].empty() : seg.text == segments[i];
    }
    if (!matches) continue;
    if (e.route.method != method) {
      result.allowed_methods.push_back(e.route.method);
      continue;
    }
    if (best == nullptr || MoreSpecific(e, *best)) best = &e;
  }

  if (best != nullptr) {
    result.kind = RouteMatch::Kind::kFound;
    result.route = &best->route;
    result.allowed_methods.clear();
    for (size_t i = 0; i < best->segments.size(); ++i) {
      const Segment& seg = best->segments[i];
      if (seg.is_rest) {
        std::string rest = segments[i];
        for (size_t j = i + 1; j < segments.size(); ++j) rest += "/" + segments[j];
        result.path_params[seg.text] = std::move(rest);
      } else if (seg.is_param) {
        result.path_params[seg.text] = std::move(segments[i]);
      }
    }
  } else if (!result.allowed_methods.empty()) {
    result.kind = RouteMatch::Kind::kMethodNotAllowed;
    std::sort(result.allowed_methods.begin(), result.allowed_methods.end());
    result.allowed_methods.erase(
        std::unique(result.allowed_methods.begin(), result.allowed_methods.end()),
        result.allowed_methods.end());
  }
  return result;
}

}  // namespace custos::http
