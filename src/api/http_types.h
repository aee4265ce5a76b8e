#pragma once

// The request and response that handlers see. Plain structs, no Boost: http/ converts from and
// to Beast, so api/ and everything below it never depends on the HTTP library.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/json.h"

namespace custos::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path, without the query
  std::string target;  // the raw request target as received (path and query)
  // Decoded query parameters; a repeated parameter keeps its first value.
  absl::flat_hash_map<std::string, std::string> query;
  // Header names in lower case; a repeated header keeps its values joined with ", ".
  absl::flat_hash_map<std::string, std::string> headers;
  std::string body;
  std::string remote_ip;
  std::string request_id;  // set by http/, echoed as X-Request-Id and carried by events
  // Filled by the router from the route pattern: "/t/{tenant}/api/v1/users/{id}" gives
  // {"tenant": ..., "id": ...}.
  absl::flat_hash_map<std::string, std::string> path_params;
  std::string base_url;  // public base URL, e.g. "http://127.0.0.1:8080", for absolute links

  // Empty when absent.
  std::string Header(std::string_view name) const;
  std::string Query(std::string_view name) const;
  bool HasQuery(std::string_view name) const { return query.contains(std::string(name)); }
  std::string Param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When positive, http/ waits this long (without holding a thread) before sending: used for
  // the progressive delay after failed sign-ins.
  absl::Duration delay = absl::ZeroDuration();

  static Response MakeJson(int status, const Json& body);
  static Response NoContent();
  void AddHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// Runs on a worker thread and may block (store, password hashing). Must not throw.
using Handler = std::function<Response(Request&)>;

struct Route {
  std::string method;   // "GET", "POST", "PUT", "DELETE"
  std::string pattern;  // "/t/{tenant}/api/v1/users/{id}"; {name} matches one path segment
  Handler handler;
};

}  // namespace custos::api
