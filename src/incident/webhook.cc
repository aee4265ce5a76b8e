#include "incident/webhook.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"

namespace custos::incident {
namespace {

std::string SignedContent(std::string_view id, int64_t timestamp, std::string_view body) {
  return fmt::format("{}.{}.{}", id, timestamp, body);
}

bool HasLineBreakOrNul(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

size_t DiscardBody(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

int CheckCancel(void* clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(clientp);
  return cancel->load(std::memory_order_relaxed) ? 1 : 0;
}

long Millis(absl::Duration d) { return static_cast<long>(absl::ToInt64Milliseconds(d)); }

}  // namespace

std::string NewWebhookSecret(crypto::Random& random) {
  return std::string(kWebhookSecretPrefix) +
         crypto::Base64Encode(random.Bytes(kWebhookSecretBytes));
}

absl::StatusOr<std::string> WebhookKey(std::string_view secret) {
  if (secret.starts_with(kWebhookSecretPrefix)) secret.remove_prefix(kWebhookSecretPrefix.size());
  std::optional<std::string> key = crypto::Base64Decode(secret);
  if (!key.has_value() || key->empty()) {
    return absl::InvalidArgumentError("the webhook secret is not whsec_ followed by base64");
  }
  return *std::move(key);
}

absl::StatusOr<std::string> SignWebhook(std::string_view secret, std::string_view id,
                                        int64_t timestamp, std::string_view body) {
  ASSIGN_OR_RETURN(std::string key, WebhookKey(secret));
  return "v1," + crypto::Base64Encode(crypto::HmacSha256(key, SignedContent(id, timestamp, body)));
}

bool VerifyWebhook(std::string_view secret, std::string_view id, int64_t timestamp,
                   std::string_view body, std::string_view signature_header) {
  absl::StatusOr<std::string> expected = SignWebhook(secret, id, timestamp, body);
  if (!expected.ok()) return false;
  bool found = false;
  while (!signature_header.empty()) {
    const size_t space = signature_header.find(' ');
    std::string_view entry = signature_header.substr(0, space);
    // Every entry is compared, so the time taken does not tell which one matched.
    if (crypto::ConstantTimeEquals(entry, *expected)) found = true;
    if (space == std::string_view::npos) break;
    signature_header.remove_prefix(space + 1);
  }
  return found;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> WebhookHeaders(
    std::string_view secret, std::string_view id, absl::Time when, std::string_view body) {
  const int64_t timestamp = absl::ToUnixSeconds(when);
  ASSIGN_OR_RETURN(std::string signature, SignWebhook(secret, id, timestamp, body));
  return std::vector<std::pair<std::string, std::string>>{
      {"webhook-id", std::string(id)},
      {"webhook-timestamp", std::to_string(timestamp)},
      {"webhook-signature", std::move(signature)}};
}

absl::StatusOr<UrlParts> ParseUrl(std::string_view url) {
  internal::CurlGlobalInit();
  const auto invalid = [] { return absl::InvalidArgumentError("not an absolute URL with a host"); };
  if (url.empty() || url.size() > 4096 || HasLineBreakOrNul(url)) return invalid();
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), &curl_url_cleanup);
  if (handle == nullptr) return absl::InternalError("libcurl could not be initialised");
  // No scheme guessing and no default scheme: "example.com/hook" is not a URL.
  if (curl_url_set(handle.get(), CURLUPART_URL, std::string(url).c_str(),
                   CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return invalid();
  }
  auto part = [&](CURLUPart which) -> std::optional<std::string> {
    char* text = nullptr;
    if (curl_url_get(handle.get(), which, &text, 0) != CURLUE_OK || text == nullptr) {
      return std::nullopt;
    }
    std::string out(text);
    curl_free(text);
    return out;
  };
  std::optional<std::string> scheme = part(CURLUPART_SCHEME);
  std::optional<std::string> host = part(CURLUPART_HOST);
  if (!scheme.has_value() || !host.has_value() || host->empty()) return invalid();
  UrlParts parts;
  parts.scheme = *std::move(scheme);
  parts.host = *std::move(host);
  for (char& c : parts.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : parts.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  parts.has_user_info = part(CURLUPART_USER).has_value() || part(CURLUPART_PASSWORD).has_value();
  parts.has_fragment = part(CURLUPART_FRAGMENT).has_value();
  return parts;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host.ends_with(".localhost") || host == "[::1]") return true;
  // 127.0.0.0/8 written as a dotted quad; libcurl has already normalised other IPv4 forms
  // ("127.1", "0x7f.1") to it.
  if (!host.starts_with("127.")) return false;
  int dots = 0;
  for (const char c : host) {
    if (c == '.') {
      ++dots;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots == 3;
}

namespace internal {

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

DeliveryResult TransportFailure(int curl_code) {
  const auto code = static_cast<CURLcode>(curl_code);
  auto retry = [](std::string error, std::string reason) {
    return DeliveryResult{
        .outcome = DeliveryOutcome::kRetry, .error = std::move(error), .reason = std::move(reason)};
  };
  switch (code) {
    case CURLE_ABORTED_BY_CALLBACK:
      return DeliveryResult{.outcome = DeliveryOutcome::kCancelled,
                            .error = "cancelled: the server is stopping",
                            .reason = "cancelled"};
    case CURLE_OPERATION_TIMEDOUT:
      return retry("timed out", "timeout");
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return retry("cannot resolve the host name", "dns");
    case CURLE_COULDNT_CONNECT:
      return retry("cannot connect", "connect");
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
      return retry("the connection closed without a complete answer", "connection");
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
      return retry("TLS handshake or certificate verification failed", "tls");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return DeliveryResult{.outcome = DeliveryOutcome::kPermanentFailure,
                            .error = "the address is not a usable URL",
                            .reason = "bad_url"};
    default:
      // libcurl's own text names no host, path or credential.
      return retry(fmt::format("network error: {}", curl_easy_strerror(code)),
                   fmt::format("curl_{}", curl_code));
  }
}

}  // namespace internal

CurlWebhookSender::CurlWebhookSender(HttpPostOptions options) : options_(std::move(options)) {
  internal::CurlGlobalInit();
}

DeliveryResult CurlWebhookSender::Post(const WebhookRequest& request) {
  if (!request.url.starts_with("https://") && !request.url.starts_with("http://")) {
    return {.outcome = DeliveryOutcome::kPermanentFailure,
            .error = "the address is not an http(s) URL",
            .reason = "bad_url"};
  }
  std::vector<std::string> lines;
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || HasLineBreakOrNul(name) || name.find(':') != std::string::npos ||
        HasLineBreakOrNul(value)) {
      return {.outcome = DeliveryOutcome::kPermanentFailure,
              .error = "a header is not valid",
              .reason = "bad_header"};
    }
    lines.push_back(fmt::format("{}: {}", name, value));
  }
  lines.push_back("Content-Type: application/json");
  lines.push_back("Expect:");  // no 100-continue round trip

  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    return {.outcome = DeliveryOutcome::kRetry,
            .error = "libcurl could not be initialised",
            .reason = "internal"};
  }
  curl_slist* headers = nullptr;
  for (const std::string& line : lines) headers = curl_slist_append(headers, line.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, Millis(options_.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Millis(options_.timeout));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &DiscardBody);
  if (request.cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &CheckCancel);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(request.cancel));
  }
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);

  if (rc != CURLE_OK) return internal::TransportFailure(rc);
  const int code = static_cast<int>(status);
  if (code >= 200 && code < 300) {
    return {.outcome = DeliveryOutcome::kDelivered, .reason = "delivered", .status = code};
  }
  if (code == 410) {
    return {.outcome = DeliveryOutcome::kPermanentFailure,
            .error = "HTTP 410 Gone: the receiver asked for no more deliveries",
            .reason = "http_410",
            .status = code};
  }
  return {.outcome = DeliveryOutcome::kRetry,
          .error = fmt::format("HTTP {}", code),
          .reason = fmt::format("http_{}", code),
          .status = code};
}

}  // namespace custos::incident
