#include "incident/mailer.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "absl/time/civil_time.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"

namespace custos::incident {
namespace {

// RFC 5322 3.2.3 atext, without the dot.
bool IsAtext(char c) {
  if (std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) {
    return true;
  }
  return std::strchr("!#$%&'*+/=?^_`{|}~-", c) != nullptr && c != '\0';
}

bool IsDotAtom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i + 1] == '.') return false;  // never the last character, checked above
    } else if (!IsAtext(s[i])) {
      return false;
    }
  }
  return true;
}

bool IsDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  int labels = 0;
  while (true) {
    const size_t dot = domain.find('.');
    std::string_view label = domain.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) &&
          c != '-') {
        return false;
      }
    }
    ++labels;
    if (dot == std::string_view::npos) break;
    domain.remove_prefix(dot + 1);
  }
  return labels >= 2;
}

bool HasLineBreakOrNul(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra;
    unsigned int min;
    unsigned int cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, min = 0x10000, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// RFC 5322 3.3 date-time in UTC. Written out by hand: strftime's %a and %b follow the locale.
std::string MailDate(absl::Time t) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const absl::CivilSecond cs = absl::ToCivilSecond(t, absl::UTCTimeZone());
  const int weekday = static_cast<int>(absl::GetWeekday(cs));  // Monday is 0
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[weekday], cs.day(),
                     kMonths[cs.month() - 1], cs.year(), cs.hour(), cs.minute(), cs.second());
}

// Printable ASCII that no decoder could take for an encoded word goes as it is; anything else
// as RFC 2047 "B" encoded words of at most 75 characters, folded onto continuation lines, each
// holding whole UTF-8 characters.
std::string SubjectHeader(std::string_view subject) {
  const bool plain =
      subject.size() <= 900 && subject.find("=?") == std::string_view::npos &&
      std::all_of(subject.begin(), subject.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F;
      });
  if (plain) return std::string(subject);
  constexpr size_t kChunk = 45;  // 60 base64 characters + 12 of "=?UTF-8?B?" "?="
  std::vector<std::string> words;
  size_t start = 0;
  while (start < subject.size()) {
    size_t end = std::min(subject.size(), start + kChunk);
    while (end < subject.size() && end > start &&
           (static_cast<unsigned char>(subject[end]) & 0xC0) == 0x80) {
      --end;
    }
    words.push_back("=?UTF-8?B?" + crypto::Base64Encode(subject.substr(start, end - start)) + "?=");
    start = end;
  }
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += "\r\n ";
    out += words[i];
  }
  return out;
}

struct Upload {
  std::string_view data;
  size_t offset = 0;
};

size_t ReadUpload(char* buffer, size_t size, size_t nitems, void* userdata) {
  Upload& upload = *static_cast<Upload*>(userdata);
  const size_t n = std::min(size * nitems, upload.data.size() - upload.offset);
  std::memcpy(buffer, upload.data.data() + upload.offset, n);
  upload.offset += n;
  return n;
}

int CheckCancel(void* clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(clientp);
  return cancel->load(std::memory_order_relaxed) ? 1 : 0;
}

long Millis(absl::Duration d) { return static_cast<long>(absl::ToInt64Milliseconds(d)); }

}  // namespace

bool IsMailAddress(std::string_view address) {
  if (address.size() > 254) return false;
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos) return false;
  std::string_view local = address.substr(0, at);
  return local.size() <= 64 && IsDotAtom(local) && IsDomain(address.substr(at + 1));
}

absl::StatusOr<std::string> FormatMail(const MailMessage& m) {
  if (!IsMailAddress(m.from)) return absl::InvalidArgumentError("From is not a mail address");
  if (!IsMailAddress(m.to)) return absl::InvalidArgumentError("To is not a mail address");
  if (!IsMailAddress(m.message_id)) {
    return absl::InvalidArgumentError("Message-ID is not local@domain");
  }
  if (HasLineBreakOrNul(m.subject)) {
    return absl::InvalidArgumentError("the subject holds a line break or NUL");
  }
  if (!ValidUtf8(m.subject) || !ValidUtf8(m.body)) {
    return absl::InvalidArgumentError("the message is not valid UTF-8");
  }
  if (m.body.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the body holds a NUL");
  }
  std::string body;
  bool eight_bit = false;
  std::string_view rest = m.body;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) {
      return absl::InvalidArgumentError("the body holds a lone CR");
    }
    if (line.size() > 998) return absl::InvalidArgumentError("a body line is over 998 bytes");
    for (const char c : line) eight_bit = eight_bit || static_cast<unsigned char>(c) >= 0x80;
    body.append(line);
    body.append("\r\n");
  }
  return fmt::format(
      "Date: {}\r\nFrom: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: <{}>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n"
      "Auto-Submitted: auto-generated\r\n\r\n{}",
      MailDate(m.date), m.from, m.to, SubjectHeader(m.subject), m.message_id,
      eight_bit ? "8bit" : "7bit", body);
}

absl::Status ValidateSmtpUrl(std::string_view url) {
  absl::StatusOr<UrlParts> parts = ParseUrl(url);
  if (!parts.ok() || (parts->scheme != "smtp" && parts->scheme != "smtps")) {
    return absl::InvalidArgumentError("not an smtp:// or smtps:// URL with a host");
  }
  if (parts->has_user_info) {
    return absl::InvalidArgumentError(
        "the URL must not hold credentials (use notify.smtp_user and notify.smtp_password)");
  }
  return absl::OkStatus();
}

CurlMailSender::CurlMailSender(SmtpOptions options) : options_(std::move(options)) {
  internal::CurlGlobalInit();
}

DeliveryResult CurlMailSender::Send(const MailMessage& message) {
  absl::StatusOr<std::string> text = FormatMail(message);
  if (!text.ok()) {
    return {.outcome = DeliveryOutcome::kPermanentFailure,
            .error = "the message cannot be written: " + std::string(text.status().message()),
            .reason = "bad_message"};
  }
  absl::StatusOr<UrlParts> relay = ParseUrl(options_.url);
  if (!relay.ok() || !ValidateSmtpUrl(options_.url).ok()) {
    return {.outcome = DeliveryOutcome::kRetry,
            .error = "no usable SMTP relay is configured (notify.smtp_url)",
            .reason = "smtp_config"};
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    return {.outcome = DeliveryOutcome::kRetry,
            .error = "libcurl could not be initialised",
            .reason = "internal"};
  }
  const std::string from = "<" + message.from + ">";
  curl_slist* recipients = curl_slist_append(nullptr, ("<" + message.to + ">").c_str());
  Upload upload{.data = *text};
  curl_easy_setopt(curl, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, Millis(options_.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Millis(options_.timeout));
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadUpload);
  curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
  if (!options_.user.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, options_.user.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, options_.password.c_str());
  }
  if (relay->scheme == "smtp") {
    // Credentials never cross a network in the clear; a relay on this machine may do without.
    const bool require_tls = !options_.user.empty() && !IsLoopbackHost(relay->host);
    curl_easy_setopt(curl, CURLOPT_USE_SSL,
                     static_cast<long>(require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
  }
  if (message.cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &CheckCancel);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(message.cancel));
  }
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  curl_slist_free_all(recipients);

  const int status = static_cast<int>(code);
  if (rc == CURLE_OK) {
    return {.outcome = DeliveryOutcome::kDelivered, .reason = "delivered", .status = status};
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_OPERATION_TIMEDOUT) {
    return internal::TransportFailure(rc);
  }
  if (status == 550 || status == 551 || status == 553) {
    return {.outcome = DeliveryOutcome::kPermanentFailure,
            .error = fmt::format("SMTP {}: the relay refused the recipient", status),
            .reason = fmt::format("smtp_{}", status),
            .status = status};
  }
  if (rc == CURLE_LOGIN_DENIED) {
    return {.outcome = DeliveryOutcome::kRetry,
            .error = "the SMTP relay refused the credentials",
            .reason = "smtp_auth",
            .status = status};
  }
  if (rc == CURLE_USE_SSL_FAILED) {
    return {.outcome = DeliveryOutcome::kRetry,
            .error = "the SMTP relay offers no STARTTLS, and credentials need TLS",
            .reason = "smtp_tls",
            .status = status};
  }
  if (status >= 400) {
    return {.outcome = DeliveryOutcome::kRetry,
            .error = fmt::format("SMTP {}", status),
            .reason = fmt::format("smtp_{}", status),
            .status = status};
  }
  return internal::TransportFailure(rc);
}

}  // namespace custos::incident
