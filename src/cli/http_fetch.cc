#include "cli/http_fetch.h"

#include <curl/curl.h>

#include <mutex>

#include <fmt/format.h>

#include "common/json.h"

namespace custos::cli {
namespace {

// curl_global_init is not thread-safe; run it once before the first handle.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Body {
  std::string data;
  size_t limit = 0;
  bool too_large = false;
};

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  Body& body = *static_cast<Body*>(userdata);
  const size_t n = size * nmemb;
  if (body.data.size() + n > body.limit) {
    body.too_large = true;
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  body.data.append(ptr, n);
  return n;
}

// The errorSummary of a Custos JSON error body, or empty.
std::string ErrorSummary(std::string_view body) {
  absl::StatusOr<Json> j = ParseJson(body);
  if (!j.ok() || !j->is_object()) return "";
  auto it = j->find("errorSummary");
  if (it == j->end() || !it->is_string()) return "";
  std::string summary = it->get<std::string>();
  if (summary.size() > 300) summary.resize(300);
  return summary;
}

absl::StatusCode CodeForHttpStatus(long status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 429:
      return absl::StatusCode::kUnavailable;
    default:
      return status >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown;
  }
}

}  // namespace

HttpClient::HttpClient(HttpFetchOptions options) : options_(std::move(options)) {
  GlobalInit();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

absl::StatusOr<std::string> HttpClient::Get(std::string_view url) {
  const std::string url_text(url);
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return absl::InvalidArgumentError(fmt::format("{}: not an http(s) URL", url_text));
  }
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return absl::InternalError("libcurl could not be initialised");
  curl_easy_reset(curl);

  Body body{.limit = options_.max_body_bytes};
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url_text.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "custos-cli");
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);

  curl_slist* headers = nullptr;
  if (!options_.token.empty()) {
    const std::string header = "Authorization: SSWS " + options_.token;
    headers = curl_slist_append(headers, header.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);

  if (body.too_large) {
    return absl::ResourceExhaustedError(fmt::format("GET {}: the response is larger than {} bytes",
                                                    url_text, options_.max_body_bytes));
  }
  if (rc != CURLE_OK) {
    // libcurl's messages name hosts and system errors, never request headers.
    const std::string why = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
    const absl::StatusCode code = rc == CURLE_OPERATION_TIMEDOUT
                                      ? absl::StatusCode::kDeadlineExceeded
                                      : absl::StatusCode::kUnavailable;
    return absl::Status(code, fmt::format("GET {}: {}", url_text, why));
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return std::move(body.data);

  std::string message = fmt::format("GET {}: HTTP {}", url_text, status);
  if (std::string summary = ErrorSummary(body.data); !summary.empty()) {
    message += ": " + summary;
  } else if (status >= 300 && status < 400) {
    message += " (redirects are not followed: give the final URL)";
  }
  return absl::Status(CodeForHttpStatus(status), message);
}

}  // namespace custos::cli
