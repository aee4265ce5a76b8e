#pragma once

// Webhooks signed per the Standard Webhooks scheme (https://www.standardwebhooks.com/), and the
// outbound HTTP POST that delivers them (libcurl).
//
// A secret is "whsec_" followed by the base64 of 24 random bytes; the HMAC key is those bytes.
// Each delivery carries three headers:
//   webhook-id         the message id: the receiver's idempotency key, the same on every retry
//   webhook-timestamp  when this attempt was signed, in Unix seconds
//   webhook-signature  "v1," + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))
// Receivers verify with any Standard Webhooks library (e.g. the `standardwebhooks` npm package).

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/random.h"

namespace custos::incident {

inline constexpr std::string_view kWebhookSecretPrefix = "whsec_";
inline constexpr size_t kWebhookSecretBytes = 24;

// A new secret: "whsec_" + base64 (standard alphabet, padded) of 24 bytes from `random`.
std::string NewWebhookSecret(crypto::Random& random);

// The HMAC key of `secret`: the base64 text after the optional "whsec_" prefix, decoded.
// kInvalidArgument when that text is not base64 or decodes to nothing.
absl::StatusOr<std::string> WebhookKey(std::string_view secret);

// The webhook-signature value "v1,<base64 signature>" of one message.
absl::StatusOr<std::string> SignWebhook(std::string_view secret, std::string_view id,
                                        int64_t timestamp, std::string_view body);

// True when one of the space-separated entries of `signature_header` is the v1 signature of the
// message (compared in constant time). Checks no timestamp tolerance: that is the receiver's
// policy.
bool VerifyWebhook(std::string_view secret, std::string_view id, int64_t timestamp,
                   std::string_view body, std::string_view signature_header);

// The three Standard Webhooks headers of one attempt, as (lower-case name, value).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> WebhookHeaders(
    std::string_view secret, std::string_view id, absl::Time when, std::string_view body);

// ---- Delivery ----

enum class DeliveryOutcome {
  kDelivered,         // the receiver took it (HTTP 2xx; SMTP accepted the message)
  kRetry,             // try again later (network failure, timeout, any other answer)
  kPermanentFailure,  // never try again (HTTP 410 Gone; the mailbox does not exist)
  kCancelled,         // stopped by the caller before an answer; not an attempt that failed
};

// What one delivery attempt gave. `error` is short, meant for people (a notification's
// lastError), and never holds a secret, a URL or a response body; empty when delivered.
// `reason` is a stable machine word for the System Log ("http_410", "timeout", ...).
struct DeliveryResult {
  DeliveryOutcome outcome = DeliveryOutcome::kRetry;
  std::string error;
  std::string reason;
  int status = 0;  // the HTTP or SMTP status of the answer; 0 when there was none
};

struct WebhookRequest {
  std::string url;  // http or https
  // Extra headers as (name, value); a value holding CR, LF or NUL is refused.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent as application/json
  // When set, the attempt stops soon after it becomes true (result kCancelled).
  const std::atomic<bool>* cancel = nullptr;
};

// Posts webhooks. Implementations are thread-safe.
class WebhookSender {
 public:
  virtual ~WebhookSender() = default;
  virtual DeliveryResult Post(const WebhookRequest& request) = 0;
};

struct HttpPostOptions {
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(10);  // the whole attempt, connecting included
  std::string user_agent = "custos-notifier";
};

// Sends with libcurl: http and https only, redirects not followed (a 3xx is an answer to
// retry), TLS peers verified against the system's CA store, proxies as the environment's
// http_proxy / https_proxy / no_proxy say. The answer's body is read and dropped. 2xx is
// kDelivered, 410 kPermanentFailure, anything else (and every transport error) kRetry.
// Thread-safe: each call uses its own libcurl handle.
class CurlWebhookSender final : public WebhookSender {
 public:
  explicit CurlWebhookSender(HttpPostOptions options = {});
  DeliveryResult Post(const WebhookRequest& request) override;

 private:
  HttpPostOptions options_;
};

// The parts of an absolute URL that the notifier's checks need, as libcurl parses it (so the
// checks and the request agree). Host names are lower case; an IPv6 host keeps its brackets.
struct UrlParts {
  std::string scheme;  // lower case: "https"
  std::string host;    // "hooks.example.com", "127.0.0.1", "[::1]"
  bool has_user_info = false;
  bool has_fragment = false;
};
// kInvalidArgument for text that is not an absolute URL with a host.
absl::StatusOr<UrlParts> ParseUrl(std::string_view url);

// True for "localhost" (and names under it), 127.0.0.0/8 and [::1].
bool IsLoopbackHost(std::string_view host);

namespace internal {
// curl_global_init, once per process, before the first handle (it is not thread-safe).
void CurlGlobalInit();
// A short, secret-free description of a libcurl failure ("timeout", "cannot connect", ...) and
// its reason word.
DeliveryResult TransportFailure(int curl_code);
}  // namespace internal

}  // namespace custos::incident
