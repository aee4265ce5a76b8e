#pragma once

// E-mail through an SMTP relay (libcurl): the RFC 5322 message and its submission.
//
// Header injection is impossible by construction: every header value is checked for CR, LF and
// NUL, addresses must be plain addr-specs (no display names, comments or angle brackets), and
// the subject is written as RFC 2047 encoded words whenever it is not short printable ASCII.

#include <atomic>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "incident/webhook.h"  // DeliveryResult, shared by both channels

namespace custos::incident {

// A plain addr-spec, ASCII only: a dot-atom local part (1..64 bytes) "@" a domain of at least
// two labels of letters, digits and hyphens; 254 bytes at most.
bool IsMailAddress(std::string_view address);

struct MailMessage {
  std::string from;        // an addr-spec (IsMailAddress)
  std::string to;          // an addr-spec (IsMailAddress)
  std::string subject;     // UTF-8, one line
  std::string body;        // plain text, UTF-8; lines end in LF or CRLF
  std::string message_id;  // "local@domain", without angle brackets
  absl::Time date;
  // When set, a submission stops soon after it becomes true (result kCancelled).
  const std::atomic<bool>* cancel = nullptr;
};

// The message as RFC 5322 text with CRLF line ends: Date, From, To, Subject, Message-ID,
// MIME-Version, Content-Type (text/plain; charset=utf-8), Content-Transfer-Encoding (7bit or
// 8bit) and Auto-Submitted: auto-generated (RFC 3834), then the body. kInvalidArgument for an
// address that is not an addr-spec, a subject or message id with CR, LF or NUL, a message id
// that is not local@domain, invalid UTF-8, or a body line over 998 bytes.
absl::StatusOr<std::string> FormatMail(const MailMessage& message);

// Sends mail. Implementations are thread-safe.
class MailSender {
 public:
  virtual ~MailSender() = default;
  virtual DeliveryResult Send(const MailMessage& message) = 0;
};

struct SmtpOptions {
  // smtp://host[:port] (STARTTLS when the relay offers it; required when credentials are set
  // and the relay is not on a loopback address) or smtps://host[:port] (TLS from the start).
  std::string url;
  std::string user;      // empty: no AUTH
  std::string password;  // a secret: never logged, never part of an error
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(20);  // the whole submission
};

// Submits with libcurl (MAIL FROM, RCPT TO, DATA). Delivered when the relay accepts the
// message (250 after DATA); kPermanentFailure when it refuses the recipient as unknown (550,
// 551, 553); kRetry for every other refusal or failure. Thread-safe: each call uses its own
// libcurl handle.
class CurlMailSender final : public MailSender {
 public:
  explicit CurlMailSender(SmtpOptions options);
  DeliveryResult Send(const MailMessage& message) override;

 private:
  SmtpOptions options_;
};

// kInvalidArgument unless `url` is smtp:// or smtps:// with a host.
absl::Status ValidateSmtpUrl(std::string_view url);

}  // namespace custos::incident
