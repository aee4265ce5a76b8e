#include "incident/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "absl/synchronization/mutex.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::incident {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// ---- Signing ----

// The example of the Standard Webhooks reference libraries' test suites ("sign function
// works", libraries/javascript/src/webhook.test.ts and the other languages' copies in
// github.com/standard-webhooks/standard-webhooks).
TEST(WebhookSignatureTest, MatchesTheReferenceLibrariesExample) {
  absl::StatusOr<std::string> signature =
      SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                  1614265330, R"({"test": 2432232314})");
  ASSERT_TRUE(signature.ok()) << signature.status();
  EXPECT_EQ(*signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // The prefix is optional, as in the reference libraries.
  EXPECT_EQ(*SignWebhook("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                         1614265330, R"({"test": 2432232314})"),
            *signature);
}

TEST(WebhookSignatureTest, NewSecretIsPrefixedBase64OfTwentyFourBytes) {
  crypto::SeededRandom random(7);
  const std::string secret = NewWebhookSecret(random);
  ASSERT_THAT(secret, StartsWith("whsec_"));
  std::optional<std::string> raw = crypto::Base64Decode(secret.substr(6));
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 24u);
  EXPECT_NE(NewWebhookSecret(random), secret);
  EXPECT_EQ(*WebhookKey(secret), *raw);
}

TEST(WebhookSignatureTest, RoundTripAndTamperedMessagesFail) {
  crypto::SeededRandom random(1);
  const std::string secret = NewWebhookSecret(random);
  const std::string body = R"({"type":"security.incident.notification"})";
  auto headers = WebhookHeaders(secret, "ntf123", absl::FromUnixSeconds(1767225600), body);
  ASSERT_TRUE(headers.ok()) << headers.status();
  std::map<std::string, std::string> h(headers->begin(), headers->end());
  EXPECT_EQ(h["webhook-id"], "ntf123");
  EXPECT_EQ(h["webhook-timestamp"], "1767225600");
  EXPECT_TRUE(VerifyWebhook(secret, "ntf123", 1767225600, body, h["webhook-signature"]));
  // Several signatures, space-separated (key rotation): one valid one is enough.
  EXPECT_TRUE(
      VerifyWebhook(secret, "ntf123", 1767225600, body,
                    "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + h["webhook-signature"]));

  EXPECT_FALSE(VerifyWebhook(secret, "ntf124", 1767225600, body, h["webhook-signature"]));
  EXPECT_FALSE(VerifyWebhook(secret, "ntf123", 1767225601, body, h["webhook-signature"]));
  EXPECT_FALSE(VerifyWebhook(secret, "ntf123", 1767225600, body + " ", h["webhook-signature"]));
  EXPECT_FALSE(
      VerifyWebhook(NewWebhookSecret(random), "ntf123", 1767225600, body, h["webhook-signature"]));
  EXPECT_FALSE(VerifyWebhook(secret, "ntf123", 1767225600, body, ""));
}

TEST(WebhookSignatureTest, SecretThatIsNotBase64IsRefused) {
  EXPECT_FALSE(WebhookKey("whsec_not base64!").ok());
  EXPECT_FALSE(WebhookKey("whsec_").ok());
  EXPECT_FALSE(SignWebhook("whsec_%%%", "id", 1, "{}").ok());
}

// ---- URLs ----

TEST(WebhookUrlTest, ParsesWhatLibcurlWouldSendTo) {
  auto parts = ParseUrl("HTTPS://Hooks.Example.COM:8443/custos?x=1");
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->scheme, "https");
  EXPECT_EQ(parts->host, "hooks.example.com");
  EXPECT_FALSE(parts->has_user_info);
  EXPECT_TRUE(ParseUrl("https://user:pw@example.com/")->has_user_info);
  EXPECT_TRUE(ParseUrl("https://example.com/#frag")->has_fragment);
  EXPECT_FALSE(ParseUrl("example.com/hook").ok());
  EXPECT_FALSE(ParseUrl("https://").ok());
  EXPECT_FALSE(ParseUrl("https://example.com/\r\nX-Injected: 1").ok());
}

TEST(WebhookUrlTest, LoopbackHosts) {
  for (std::string_view host : {"localhost", "127.0.0.1", "127.8.9.10", "[::1]", "a.localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (std::string_view host : {"127.0.0.1.example.com", "10.0.0.1", "[::2]", "localhost.com",
                                "example.com", "128.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
  // Other spellings of 127.0.0.1 reach the check normalised.
  EXPECT_TRUE(IsLoopbackHost(ParseUrl("http://127.1/")->host));
  EXPECT_TRUE(IsLoopbackHost(ParseUrl("http://0x7f000001/")->host));
}

// ---- Delivery over real HTTP ----

// A one-request-per-connection HTTP/1.1 listener on 127.0.0.1 for the tests: records each
// request and answers with the status it is told, after an optional delay.
class TinyHttpServer {
 public:
  struct Received {
    std::string request_line;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
  };

  TinyHttpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 16);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyHttpServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }

  std::string Url(std::string_view path = "/hook") const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  void Answer(int status, std::string extra_headers = "", absl::Duration delay = {}) {
    absl::MutexLock lock(&mu_);
    status_ = status;
    extra_headers_ = std::move(extra_headers);
    delay_ = delay;
  }
  std::vector<Received> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  void Serve() {
    while (!stopping_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string data;
      char buf[4096];
      size_t header_end;
      while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        data.append(buf, static_cast<size_t>(n));
      }
      if (header_end == std::string::npos) {
        ::close(c);
        continue;
      }
      Received r;
      std::string head = data.substr(0, header_end);
      size_t eol = head.find("\r\n");
      r.request_line = head.substr(0, eol);
      size_t pos = eol == std::string::npos ? head.size() : eol + 2;
      while (pos < head.size()) {
        size_t next = head.find("\r\n", pos);
        if (next == std::string::npos) next = head.size();
        std::string line = head.substr(pos, next - pos);
        const size_t colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        pos = next + 2;
      }
      const size_t length = std::stoul(
          r.headers.count("content-length") != 0 ? r.headers["content-length"] : std::string("0"));
      r.body = data.substr(header_end + 4);
      while (r.body.size() < length) {
        const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        r.body.append(buf, static_cast<size_t>(n));
      }
      int status;
      std::string extra;
      absl::Duration delay;
      {
        absl::MutexLock lock(&mu_);
        received_.push_back(r);
        status = status_;
        extra = extra_headers_;
        delay = delay_;
      }
      absl::SleepFor(delay);
      const std::string answer = fmt::format(
          "HTTP/1.1 {} X\r\nContent-Length: 2\r\nConnection: close\r\n{}\r\nok", status, extra);
      ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 200;
  std::string extra_headers_ ABSL_GUARDED_BY(mu_);
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
};

TEST(CurlWebhookSenderTest, PostsTheSignedBodyAndTakesTwoHundredAsDelivered) {
  TinyHttpServer server;
  server.Answer(204);
  crypto::SeededRandom random(3);
  const std::string secret = NewWebhookSecret(random);
  const std::string body = R"({"type":"security.incident.notification","data":{"x":1}})";
  auto headers = WebhookHeaders(secret, "ntfABC", absl::FromUnixSeconds(1767225600), body);
  ASSERT_TRUE(headers.ok());

  CurlWebhookSender sender;
  DeliveryResult result =
      sender.Post({.url = server.Url("/hook?token=t"), .headers = *headers, .body = body});
  EXPECT_EQ(result.outcome, DeliveryOutcome::kDelivered) << result.error;
  EXPECT_EQ(result.status, 204);
  EXPECT_TRUE(result.error.empty());

  std::vector<TinyHttpServer::Received> got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].request_line, "POST /hook?token=t HTTP/1.1");
  EXPECT_EQ(got[0].body, body);
  EXPECT_EQ(got[0].headers["content-type"], "application/json");
  EXPECT_EQ(got[0].headers["webhook-id"], "ntfABC");
  EXPECT_EQ(got[0].headers["webhook-timestamp"], "1767225600");
  EXPECT_EQ(got[0].headers["user-agent"], "custos-notifier");
  EXPECT_TRUE(VerifyWebhook(secret, got[0].headers["webhook-id"], 1767225600, got[0].body,
                            got[0].headers["webhook-signature"]));
}

TEST(CurlWebhookSenderTest, GoneIsPermanentAndOtherAnswersAreRetried) {
  TinyHttpServer server;
  CurlWebhookSender sender;
  server.Answer(410);
  DeliveryResult gone = sender.Post({.url = server.Url(), .body = "{}"});
  EXPECT_EQ(gone.outcome, DeliveryOutcome::kPermanentFailure);
  EXPECT_EQ(gone.reason, "http_410");

  server.Answer(503);
  DeliveryResult unavailable = sender.Post({.url = server.Url(), .body = "{}"});
  EXPECT_EQ(unavailable.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(unavailable.error, "HTTP 503");
  EXPECT_EQ(unavailable.status, 503);

  // A redirect is not followed: the receiver must give its final address.
  server.Answer(302, "Location: http://127.0.0.1:1/elsewhere\r\n");
  DeliveryResult moved = sender.Post({.url = server.Url(), .body = "{}"});
  EXPECT_EQ(moved.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(moved.status, 302);
  EXPECT_EQ(server.received().size(), 3u);
}

TEST(CurlWebhookSenderTest, TimeoutsAndRefusedConnectionsAreRetriedWithoutTheUrlInTheError) {
  TinyHttpServer server;
  server.Answer(200, "", absl::Milliseconds(1500));
  CurlWebhookSender sender(HttpPostOptions{.timeout = absl::Milliseconds(300)});
  DeliveryResult slow = sender.Post({.url = server.Url("/secret-path"), .body = "{}"});
  EXPECT_EQ(slow.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(slow.reason, "timeout");
  EXPECT_THAT(slow.error, Not(HasSubstr("secret-path")));

  // Port 1 on loopback: nothing listens there.
  DeliveryResult refused = sender.Post({.url = "http://127.0.0.1:1/secret-path", .body = "{}"});
  EXPECT_EQ(refused.outcome, DeliveryOutcome::kRetry);
  EXPECT_EQ(refused.reason, "connect");
  EXPECT_THAT(refused.error, Not(HasSubstr("secret-path")));
}

TEST(CurlWebhookSenderTest, OnlyHttpAndValidHeaders) {
  CurlWebhookSender sender;
  EXPECT_EQ(sender.Post({.url = "file:///etc/passwd", .body = "{}"}).outcome,
            DeliveryOutcome::kPermanentFailure);
  EXPECT_EQ(sender.Post({.url = "ftp://127.0.0.1/", .body = "{}"}).outcome,
            DeliveryOutcome::kPermanentFailure);
  TinyHttpServer server;
  DeliveryResult injected = sender.Post(
      {.url = server.Url(), .headers = {{"webhook-id", "a\r\nX-Evil: 1"}}, .body = "{}"});
  EXPECT_EQ(injected.outcome, DeliveryOutcome::kPermanentFailure);
  EXPECT_TRUE(server.received().empty());
}

TEST(CurlWebhookSenderTest, CancelStopsAnAttemptInFlight) {
  TinyHttpServer server;
  server.Answer(200, "", absl::Seconds(2));
  CurlWebhookSender sender;
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    cancel = true;
  });
  const absl::Time start = absl::Now();
  DeliveryResult result = sender.Post({.url = server.Url(), .body = "{}", .cancel = &cancel});
  canceller.join();
  EXPECT_EQ(result.outcome, DeliveryOutcome::kCancelled);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
}

}  // namespace
}  // namespace custos::incident
