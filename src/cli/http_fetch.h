#pragma once

// A small HTTP(S) client (libcurl) for the commands that talk to a Custos server, such as
// `custos log verify <url>` and `custos device`. One HttpClient keeps its connection open between
// requests.
//
// Get errors: kNotFound for 404; kUnauthenticated (401), kPermissionDenied (403), kInvalidArgument
// (400), kUnavailable (429, 5xx, connection failures), kDeadlineExceeded (timeout), kUnknown for
// other statuses; the message names the URL, the HTTP status and, when the body is a Custos JSON
// error, its errorSummary. The token is never part of a message.
//
// Not thread-safe: one HttpClient per thread.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace custos::cli {

struct HttpFetchOptions {
  // Sent as "Authorization: SSWS <token>" when not empty. A secret: never logged.
  std::string token;
  // For the whole of each request, connecting included.
  absl::Duration timeout = absl::Seconds(60);
  // Bodies larger than this fail (kResourceExhausted) instead of filling memory.
  size_t max_body_bytes = 64 << 20;
};

// One request for HttpClient::Send.
struct HttpRequest {
  std::string method = "GET";  // an upper-case token: GET, POST, PUT, PATCH, DELETE, ...
  std::string url;             // http or https
  // Extra headers as (name, value). A value with CR or LF is refused. An "Authorization" header
  // here replaces the SSWS one of HttpFetchOptions::token.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;          // sent when not empty, or always for POST
  std::string content_type;  // the Content-Type of `body`; empty sends none
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

class HttpClient {
 public:
  explicit HttpClient(HttpFetchOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GETs `url` (http or https only; redirects are not followed) and returns the body of a 2xx
  // response.
  absl::StatusOr<std::string> Get(std::string_view url);

  // Sends `request` (redirects are not followed) and returns the response whatever its status:
  // an error status means the request could not be made or its answer not read (kInvalidArgument
  // for a bad URL, method or header; kUnavailable for connection failures; kDeadlineExceeded for
  // a timeout; kResourceExhausted for a body over max_body_bytes). Messages name the method and
  // URL, never headers or bodies.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

 private:
  HttpFetchOptions options_;
  void* curl_ = nullptr;  // CURL*, kept for connection reuse
};

}  // namespace custos::cli
