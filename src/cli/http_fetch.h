#pragma once

// A small HTTP(S) GET client (libcurl) for the commands that read a Custos server, such as
// `custos log verify <url>`. One HttpClient keeps its connection open between requests.
//
// Errors: kNotFound for 404; kUnauthenticated (401), kPermissionDenied (403), kInvalidArgument
// (400), kUnavailable (429, 5xx, connection failures), kDeadlineExceeded (timeout), kUnknown for
// other statuses; the message names the URL, the HTTP status and, when the body is a Custos JSON
// error, its errorSummary. The token is never part of a message.
//
// Not thread-safe: one HttpClient per thread.

#include <memory>
#include <string>
#include <string_view>

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

class HttpClient {
 public:
  explicit HttpClient(HttpFetchOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GETs `url` (http or https only; redirects are not followed) and returns the body of a 2xx
  // response.
  absl::StatusOr<std::string> Get(std::string_view url);

 private:
  HttpFetchOptions options_;
  void* curl_ = nullptr;  // CURL*, kept for connection reuse
};

}  // namespace custos::cli
