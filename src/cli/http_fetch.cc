#include "cli/http_fetch.h"

#include <curl/curl.h>

#include <cctype>
#include <mutex>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/json.h"
#include "common/status_macros.h"

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

bool IsHttpUrl(std::string_view url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

// RFC 9110 5.6.2 token characters.
bool IsHeaderName(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && kSymbols.find(c) == kSymbols.npos) {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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
  if (!IsHttpUrl(url)) {
    return absl::InvalidArgumentError(fmt::format("{}: not an http(s) URL", url_text));
  }
  ASSIGN_OR_RETURN(HttpResponse response, Send(HttpRequest{.method = "GET", .url = url_text}));
  const long status = response.status;
  if (status >= 200 && status < 300) return std::move(response.body);

  std::string message = fmt::format("GET {}: HTTP {}", url_text, status);
  if (std::string summary = ErrorSummary(response.body); !summary.empty()) {
    message += ": " + summary;
  } else if (status >= 300 && status < 400) {
    message += " (redirects are not followed: give the final URL)";
  }
  return absl::Status(CodeForHttpStatus(status), message);
}

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  const std::string& url = request.url;
  const std::string& method = request.method;
  if (!IsHttpUrl(url)) {
    return absl::InvalidArgumentError(fmt::format("{}: not an http(s) URL", url));
  }
  if (method.empty() || method.size() > 16 ||
      method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos) {
    return absl::InvalidArgumentError("HTTP method must be an upper-case word such as GET");
  }
  if ((method == "GET" || method == "HEAD") && !request.body.empty()) {
    return absl::InvalidArgumentError(fmt::format("a {} request has no body", method));
  }
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return absl::InternalError("libcurl could not be initialised");

  // Built before the handle is touched: a refused header leaves nothing half set.
  bool has_authorization = false;
  std::vector<std::string> header_lines;
  for (const auto& [name, value] : request.headers) {
    if (!IsHeaderName(name) || value.find_first_of("\r\n") != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(fmt::format("{} {}: header {} is not a valid header",
                                                    method, url,
                                                    IsHeaderName(name) ? name : "name"));
    }
    if (Lower(name) == "authorization") has_authorization = true;
    header_lines.push_back(fmt::format("{}: {}", name, value));
  }
  if (!options_.token.empty() && !has_authorization) {
    header_lines.push_back("Authorization: SSWS " + options_.token);
  }
  const bool sends_body = method == "POST" || !request.body.empty();
  if (sends_body) {
    // Without a type libcurl would claim application/x-www-form-urlencoded; an empty value
    // removes that header. "Expect:" stops libcurl waiting for 100-continue on large bodies.
    header_lines.push_back(request.content_type.empty() ? "Content-Type:"
                                                        : "Content-Type: " + request.content_type);
    header_lines.push_back("Expect:");
  }

  curl_easy_reset(curl);
  Body body{.limit = options_.max_body_bytes};
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
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
  if (method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    if (method != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (sends_body) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
    }
  }

  curl_slist* headers = nullptr;
  for (const std::string& line : header_lines) headers = curl_slist_append(headers, line.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, nullptr);
  curl_slist_free_all(headers);

  if (body.too_large) {
    return absl::ResourceExhaustedError(fmt::format("{} {}: the response is larger than {} bytes",
                                                    method, url, options_.max_body_bytes));
  }
  if (rc != CURLE_OK) {
    // libcurl's messages name hosts and system errors, never request headers.
    const std::string why = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
    const absl::StatusCode code = rc == CURLE_OPERATION_TIMEDOUT
                                      ? absl::StatusCode::kDeadlineExceeded
                                      : absl::StatusCode::kUnavailable;
    return absl::Status(code, fmt::format("{} {}: {}", method, url, why));
  }
  HttpResponse response;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(body.data);
  return response;
}

}  // namespace custos::cli
