#include "incident/mailer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "absl/synchronization/mutex.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::incident {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

MailMessage Sample() {
  return MailMessage{.from = "security@custos.example",
                     .to = "soc@acme.example",
                     .subject = "[Custos security] Support workstation compromised",
                     .body = "Line one\nLine two\n",
                     .message_id = "ntf123@custos.example",
                     .date = absl::FromUnixSeconds(1767225600)};  // a Thursday
}

// The header block of a formatted message, and its body.
std::pair<std::string, std::string> Split(const std::string& text) {
  const size_t end = text.find("\r\n\r\n");
  return {text.substr(0, end + 2), text.substr(end + 4)};
}

TEST(FormatMailTest, WritesAnRfc5322MessageWithCrlfLines) {
  absl::StatusOr<std::string> text = FormatMail(Sample());
  ASSERT_TRUE(text.ok()) << text.status();
  auto [headers, body] = Split(*text);
  EXPECT_EQ(headers,
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
            "From: security@custos.example\r\n"
            "To: soc@acme.example\r\n"
            "Subject: [Custos security] Support workstation compromised\r\n"
            "Message-ID: <ntf123@custos.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "Auto-Submitted: auto-generated\r\n");
  EXPECT_EQ(body, "Line one\r\nLine two\r\n");
}

TEST(FormatMailTest, HeaderInjectionIsImpossible) {
  for (std::string subject :
       std::vector<std::string>{"hi\r\nBcc: victim@example.com", "hi\nBcc: x@example.com",
                                std::string("hi\0there", 8), "hi\rthere"}) {
    MailMessage m = Sample();
    m.subject = subject;
    EXPECT_FALSE(FormatMail(m).ok()) << subject;
  }
  for (std::string address : {"soc@acme.example\r\nBcc: x@example.com", "Soc <soc@acme.example>",
                              "soc@acme.example,x@y.z", "soc@acme", "@acme.example",
                              "soc@@acme.example", "so c@acme.example"}) {
    MailMessage m = Sample();
    m.to = address;
    EXPECT_FALSE(FormatMail(m).ok()) << address;
    m = Sample();
    m.from = address;
    EXPECT_FALSE(FormatMail(m).ok()) << address;
  }
  MailMessage m = Sample();
  m.message_id = "ntf1@x.example>\r\nBcc: a@b.example";
  EXPECT_FALSE(FormatMail(m).ok());
}

TEST(FormatMailTest, NonAsciiSubjectBecomesEncodedWordsThatDecodeBack) {
  MailMessage m = Sample();
  m.subject = "Sécurité : poste de travail compromis — déclaration d'incident n° 2026-001 ✓";
  absl::StatusOr<std::string> text = FormatMail(m);
  ASSERT_TRUE(text.ok()) << text.status();
  auto [headers, body] = Split(*text);
  const size_t start = headers.find("Subject: ") + 9;
  const size_t end = headers.find("\r\nMessage-ID:");
  std::string folded = headers.substr(start, end - start);
  std::string decoded;
  size_t pos = 0;
  while (pos < folded.size()) {
    if (folded.compare(pos, 3, "\r\n ") == 0) {
      pos += 3;
      continue;
    }
    ASSERT_EQ(folded.compare(pos, 10, "=?UTF-8?B?"), 0) << folded.substr(pos);
    const size_t close = folded.find("?=", pos + 10);
    ASSERT_NE(close, std::string::npos);
    EXPECT_LE(close + 2 - pos, 75u);  // RFC 2047: an encoded word is at most 75 characters
    std::optional<std::string> part =
        crypto::Base64Decode(folded.substr(pos + 10, close - pos - 10));
    ASSERT_TRUE(part.has_value());
    decoded += *part;
    pos = close + 2;
  }
  EXPECT_EQ(decoded, m.subject);
}

TEST(FormatMailTest, BodyRules) {
  MailMessage m = Sample();
  m.body = "Grüße\r\nzweite Zeile";
  absl::StatusOr<std::string> text = FormatMail(m);
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr("Content-Transfer-Encoding: 8bit\r\n"));
  EXPECT_EQ(Split(*text).second, "Grüße\r\nzweite Zeile\r\n");

  m.body = "a lone\rcarriage return";
  EXPECT_FALSE(FormatMail(m).ok());
  m.body = std::string(999, 'x');
  EXPECT_FALSE(FormatMail(m).ok());
  m.body = std::string(998, 'x');
  EXPECT_TRUE(FormatMail(m).ok());
  m.body = "\xC3\x28 invalid UTF-8";
  EXPECT_FALSE(FormatMail(m).ok());
}

TEST(MailAddressTest, SaneAddresses) {
  for (std::string_view ok :
       {"a@b.co", "first.last+tag@mail.example.org", "x_y-z@a-b.example", "o'brien@example.ie"}) {
    EXPECT_TRUE(IsMailAddress(ok)) << ok;
  }
  for (std::string_view bad : {"", "a", "a@b", "a@-b.example", "a@b-.example", ".a@b.example",
                               "a.@b.example", "a..b@c.example", "a@b..example", "a b@c.example",
                               "a@b.example ", "\"q\"@b.example", "ü@b.example", "a@bü.example"}) {
    EXPECT_FALSE(IsMailAddress(bad)) << bad;
  }
  EXPECT_FALSE(IsMailAddress(std::string(65, 'a') + "@b.example"));
}

TEST(MailAddressTest, SmtpUrls) {
  EXPECT_TRUE(ValidateSmtpUrl("smtp://127.0.0.1:2525").ok());
  EXPECT_TRUE(ValidateSmtpUrl("smtps://relay.example.com").ok());
  EXPECT_FALSE(ValidateSmtpUrl("http://relay.example.com").ok());
  EXPECT_FALSE(ValidateSmtpUrl("smtp://user:pw@relay.example.com").ok());
  EXPECT_FALSE(ValidateSmtpUrl("relay.example.com").ok());
}

// Speaks just enough SMTP (RFC 5321) for libcurl: greeting, EHLO, AUTH PLAIN, MAIL, RCPT, DATA
// (removing the dot-stuffing), QUIT. Recipients in `refuse` get 550, in `defer` 451.
class FakeSmtpServer {
 public:
  struct Session {
    std::string auth;  // the decoded AUTH PLAIN response
    std::string mail_from;
    std::vector<std::string> rcpt_to;
    std::string data;
  };

  explicit FakeSmtpServer(bool offer_auth = false) : offer_auth_(offer_auth) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 8);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeSmtpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }

  std::string Url() const { return fmt::format("smtp://127.0.0.1:{}", port_); }
  void Refuse(std::string rcpt, int code) {
    absl::MutexLock lock(&mu_);
    refuse_[std::move(rcpt)] = code;
  }
  std::vector<Session> sessions() {
    absl::MutexLock lock(&mu_);
    return sessions_;
  }

 private:
  // One CRLF-terminated line; false when the client went away.
  static bool ReadLine(int c, std::string& buffer, std::string& line) {
    size_t eol;
    char buf[1024];
    while ((eol = buffer.find("\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      buffer.append(buf, static_cast<size_t>(n));
    }
    line = buffer.substr(0, eol);
    buffer.erase(0, eol + 2);
    return true;
  }
  static void Send(int c, std::string_view text) {
    ::send(c, text.data(), text.size(), MSG_NOSIGNAL);
  }

  void Serve() {
    while (true) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      Session session;
      std::string buffer;
      std::string line;
      Send(c, "220 fake.example ESMTP\r\n");
      while (ReadLine(c, buffer, line)) {
        std::string verb = line.substr(0, line.find(' '));
        for (char& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (verb == "EHLO") {
          Send(c, offer_auth_ ? "250-fake.example\r\n250 AUTH PLAIN\r\n" : "250 fake.example\r\n");
        } else if (verb == "AUTH") {
          std::string response = line.size() > 11 ? line.substr(11) : "";
          if (response.empty()) {
            Send(c, "334 \r\n");
            if (!ReadLine(c, buffer, response)) break;
          }
          session.auth = crypto::Base64Decode(response).value_or("?");
          Send(c, session.auth == std::string("\0mailer\0s3cret-pw", 17)
                      ? "235 2.7.0 Authentication successful\r\n"
                      : "535 5.7.8 Authentication credentials invalid\r\n");
        } else if (verb == "MAIL") {
          session.mail_from = line.substr(10);
          Send(c, "250 2.1.0 Ok\r\n");
        } else if (verb == "RCPT") {
          std::string rcpt = line.substr(8);
          session.rcpt_to.push_back(rcpt);
          int code = 250;
          {
            absl::MutexLock lock(&mu_);
            if (auto it = refuse_.find(rcpt); it != refuse_.end()) code = it->second;
          }
          Send(c, fmt::format("{} {}\r\n", code, code == 250 ? "2.1.5 Ok" : "no"));
        } else if (verb == "DATA") {
          Send(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
          while (ReadLine(c, buffer, line) && line != ".") {
            if (line.starts_with(".")) line.erase(0, 1);
            session.data += line + "\r\n";
          }
          Send(c, "250 2.0.0 Ok: queued\r\n");
        } else if (verb == "QUIT") {
          Send(c, "221 2.0.0 Bye\r\n");
          break;
        } else if (verb == "RSET" || verb == "NOOP") {
          Send(c, "250 Ok\r\n");
        } else {
          Send(c, "502 5.5.2 Error: command not recognized\r\n");
        }
      }
      ::close(c);
      absl::MutexLock lock(&mu_);
      sessions_.push_back(std::move(session));
    }
  }

  const bool offer_auth_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  std::map<std::string, int> refuse_ ABSL_GUARDED_BY(mu_);
  std::vector<Session> sessions_ ABSL_GUARDED_BY(mu_);
};

// Sessions are recorded when the client hangs up, just after Send returns.
std::vector<FakeSmtpServer::Session> WaitForSessions(FakeSmtpServer& server, size_t n) {
  for (int i = 0; i < 200 && server.sessions().size() < n; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  return server.sessions();
}

TEST(CurlMailSenderTest, SubmitsTheMessageToTheRelay) {
  FakeSmtpServer relay;
  CurlMailSender sender(SmtpOptions{.url = relay.Url()});
  MailMessage m = Sample();
  m.body = "Evidence:\n.hidden line that SMTP must dot-stuff\n.\nend\n";
  DeliveryResult result = sender.Send(m);
  ASSERT_EQ(result.outcome, DeliveryOutcome::kDelivered) << result.error;

  std::vector<FakeSmtpServer::Session> sessions = WaitForSessions(relay, 1);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].mail_from, "<security@custos.example>");
  EXPECT_THAT(sessions[0].rcpt_to, ::testing::ElementsAre("<soc@acme.example>"));
  EXPECT_EQ(sessions[0].data, *FormatMail(m));
  EXPECT_TRUE(sessions[0].auth.empty());
}

TEST(CurlMailSenderTest, UnknownMailboxIsPermanentOtherRefusalsAreRetried) {
  FakeSmtpServer relay;
  relay.Refuse("<gone@acme.example>", 550);
  relay.Refuse("<busy@acme.example>", 451);
  CurlMailSender sender(SmtpOptions{.url = relay.Url()});
  MailMessage m = Sample();
  m.to = "gone@acme.example";
  DeliveryResult gone = sender.Send(m);
  EXPECT_EQ(gone.outcome, DeliveryOutcome::kPermanentFailure);
  EXPECT_EQ(gone.status, 550);
  m.to = "busy@acme.example";
  DeliveryResult busy = sender.Send(m);
  EXPECT_EQ(busy.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(busy.status, 451);
}

TEST(CurlMailSenderTest, AuthenticatesAndNeverShowsThePassword) {
  FakeSmtpServer relay(/*offer_auth=*/true);
  CurlMailSender good(SmtpOptions{.url = relay.Url(), .user = "mailer", .password = "s3cret-pw"});
  DeliveryResult ok = good.Send(Sample());
  EXPECT_EQ(ok.outcome, DeliveryOutcome::kDelivered) << ok.error;

  CurlMailSender bad(SmtpOptions{.url = relay.Url(), .user = "mailer", .password = "wrong-pw"});
  DeliveryResult refused = bad.Send(Sample());
  EXPECT_EQ(refused.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(refused.reason, "smtp_auth");
  EXPECT_THAT(refused.error, Not(HasSubstr("wrong-pw")));

  std::vector<FakeSmtpServer::Session> sessions = WaitForSessions(relay, 2);
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[0].auth, std::string("\0mailer\0s3cret-pw", 17));
  EXPECT_FALSE(sessions[0].data.empty());
  EXPECT_TRUE(sessions[1].data.empty());
}

TEST(CurlMailSenderTest, CredentialsToARemoteRelayRequireTls) {
  // [::ffff:127.0.0.1] reaches the loopback listener but is not a loopback name: the relay
  // offers no STARTTLS, so libcurl must not send the password at all.
  FakeSmtpServer relay(/*offer_auth=*/true);
  const std::string url = relay.Url();
  const std::string port = url.substr(url.rfind(':') + 1);
  CurlMailSender sender(SmtpOptions{.url = "smtp://[::ffff:127.0.0.1]:" + port,
                                    .user = "mailer",
                                    .password = "s3cret-pw",
                                    .connect_timeout = absl::Seconds(1),
                                    .timeout = absl::Seconds(2)});
  DeliveryResult result = sender.Send(Sample());
  EXPECT_EQ(result.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(result.reason, "smtp_tls") << result.error;
  std::vector<FakeSmtpServer::Session> sessions = WaitForSessions(relay, 1);
  ASSERT_THAT(sessions, ::testing::SizeIs(1)) << "the relay was reached";
  EXPECT_TRUE(sessions[0].auth.empty());
  EXPECT_TRUE(sessions[0].data.empty());
}

TEST(CurlMailSenderTest, NoRelayIsARetryNotACrash) {
  CurlMailSender nowhere(SmtpOptions{.url = "smtp://127.0.0.1:1",
                                     .connect_timeout = absl::Seconds(1),
                                     .timeout = absl::Seconds(2)});
  DeliveryResult result = nowhere.Send(Sample());
  EXPECT_EQ(result.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(result.reason, "connect");

  CurlMailSender unconfigured(SmtpOptions{});
  EXPECT_EQ(unconfigured.Send(Sample()).reason, "smtp_config");

  MailMessage bad = Sample();
  bad.subject = "x\r\nBcc: y@z.example";
  EXPECT_EQ(nowhere.Send(bad).outcome, DeliveryOutcome::kPermanentFailure);
}

}  // namespace
}  // namespace custos::incident
