#include "cli/device_command.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/json.h"
#include "common/time_format.h"
#include "support/dpop.h"
#include "support/jwk.h"
#include "support/posture.h"

namespace custos::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kServer = "https://id.example.com";
constexpr std::string_view kEnrolmentToken = "enr_0123456789secret";
constexpr std::string_view kSessionToken = "sess_0123456789secret";
constexpr std::string_view kAccessToken = "cop_0123456789secret";

// Collects what a command prints.
class Captured {
 public:
  Captured() : file_(open_memstream(&buffer_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

// What a command reads as its input.
class Input {
 public:
  explicit Input(std::string_view text) : file_(std::tmpfile()) {
    std::fwrite(text.data(), 1, text.size(), file_);
    std::rewind(file_);
  }
  ~Input() { std::fclose(file_); }
  std::FILE* file() { return file_; }

 private:
  std::FILE* file_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, std::string_view data) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

unsigned Mode(const fs::path& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string HeaderOf(const HttpRequest& request, std::string_view name) {
  for (const auto& [n, v] : request.headers) {
    if (n == name) return v;
  }
  return "";
}

// An HTTP/1.1 server on 127.0.0.1 that answers one request with `response` and keeps what it
// received, so that a test sees the bytes HttpClient::Send put on the wire.
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) : response_(std::move(response)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotServer() {
    ::shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }
  // What was received; call after the request completed.
  std::string received() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  void Serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    char buffer[4096];
    size_t expected = std::string::npos;
    while (expected == std::string::npos || received_.size() < expected) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      received_.append(buffer, static_cast<size_t>(n));
      const size_t end = received_.find("\r\n\r\n");
      if (end != std::string::npos && expected == std::string::npos) {
        size_t length = 0;
        const size_t at = received_.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(received_.substr(at + 16));
        expected = end + 4 + length;
      }
    }
    ssize_t unused = ::write(fd, response_.data(), response_.size());
    (void)unused;
    ::close(fd);
  }

  std::string response_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string received_;
};

class DeviceCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/custos-device-command-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    dir_ = root_ / "device";
    io_.out = out_.file();
    io_.err = err_.file();
    io_.in = empty_input_.file();
    io_.clock = &clock_;
    io_.random = &random_;
    io_.system_root = (root_ / "system").string();
    io_.send = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
      requests_.push_back(request);
      if (!server_) return absl::UnavailableError("no server in this test");
      return server_(request);
    };
  }
  void TearDown() override { fs::remove_all(root_); }

  // Checks the DPoP proof of `request` as the server would; the key's thumbprint.
  std::string VerifyProof(const HttpRequest& request,
                          std::optional<std::string> access_token = std::nullopt) {
    absl::StatusOr<support::DpopResult> result = verifier_.Verify(
        HeaderOf(request, "DPoP"),
        {.method = request.method, .url = request.url, .access_token = std::move(access_token)});
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->jkt : "";
  }

  // A server that enrols any device with the right token.
  static HttpResponse Enrolled(std::string_view jkt) {
    return {201, DumpJson(Json{{"id", "dev1"},
                               {"vendorId", "vnd1"},
                               {"name", "laptop-17"},
                               {"status", "ACTIVE"},
                               {"jkt", jkt}})};
  }

  int Enroll(std::string_view server = kServer) {
    server_ = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
      const std::string jkt = VerifyProof(request);
      const Json body = ParseJson(request.body).value();
      if (body["token"] != kEnrolmentToken) return HttpResponse{401, "{}"};
      jwk_ = body["jwk"];
      return Enrolled(jkt);
    };
    return DeviceEnroll({.server = std::string(server),
                         .token = std::string(kEnrolmentToken),
                         .dir = dir_.string()},
                        io_);
  }

  void StoreToken(absl::Duration lifetime = absl::Minutes(15)) {
    WriteFile(dir_ / "token.json",
              DumpJson(Json{{"access_token", kAccessToken},
                            {"expires_at", FormatRfc3339(clock_.Now() + lifetime)}}));
    fs::permissions(dir_ / "token.json", fs::perms(0600));
  }

  fs::path root_;
  fs::path dir_;
  FakeClock clock_;
  crypto::SeededRandom random_{11};
  support::DpopVerifier verifier_{clock_};
  Captured out_;
  Captured err_;
  Input empty_input_{""};
  DeviceCommandIo io_;
  std::function<absl::StatusOr<HttpResponse>(const HttpRequest&)> server_;
  std::vector<HttpRequest> requests_;
  Json jwk_;
};

TEST_F(DeviceCommandTest, EnrollRegistersANewKeyAndWritesTheDevice) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  ASSERT_EQ(requests_.size(), 1u);
  const HttpRequest& request = requests_[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, "https://id.example.com/provider/api/v1/devices/enroll");
  EXPECT_EQ(request.content_type, "application/json");
  EXPECT_FALSE(support::HasPrivateKeyMembers(jwk_));

  EXPECT_EQ(Mode(dir_), 0700u);
  EXPECT_EQ(Mode(dir_ / "device.key"), 0600u);
  EXPECT_EQ(Mode(dir_ / "device.json"), 0600u);
  EXPECT_EQ(
      ParseJson(ReadFile(dir_ / "device.json")).value(),
      (Json{
          {"server", kServer}, {"deviceId", "dev1"}, {"vendorId", "vnd1"}, {"name", "laptop-17"}}));
  const std::string jkt = support::Thumbprint(support::ParsePublicJwk(jwk_).value());
  EXPECT_THAT(out_.text(), HasSubstr("enrolled device dev1 (laptop-17) of vendor vnd1"));
  EXPECT_THAT(out_.text(), HasSubstr(jkt));
  EXPECT_THAT(out_.text() + err_.text(), Not(HasSubstr(kEnrolmentToken)));
}

TEST_F(DeviceCommandTest, EnrollRefusesADirectoryThatHoldsADevice) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  const std::string key = ReadFile(dir_ / "device.key");
  requests_.clear();
  EXPECT_EQ(Enroll(), 2);
  EXPECT_TRUE(requests_.empty());
  EXPECT_THAT(err_.text(), HasSubstr("already holds device dev1"));
  EXPECT_EQ(ReadFile(dir_ / "device.key"), key);
}

TEST_F(DeviceCommandTest, ARefusedEnrolmentExitsOneAndTheRetryUsesTheSameKey) {
  server_ = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
    jwk_ = ParseJson(request.body).value()["jwk"];
    return HttpResponse{401, R"({"errorCode":"E0000011","errorSummary":"Invalid token provided",)"
                             R"("reason":"enrollment_token_used"})"};
  };
  const DeviceEnrollFlags flags{
      .server = std::string(kServer), .token = std::string(kEnrolmentToken), .dir = dir_.string()};
  EXPECT_EQ(DeviceEnroll(flags, io_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("enrolment refused: HTTP 401: Invalid token provided "
                                     "(enrollment_token_used)"));
  EXPECT_FALSE(fs::exists(dir_ / "device.json"));
  const Json first = jwk_;

  ASSERT_EQ(Enroll(), 0) << err_.text();
  EXPECT_EQ(jwk_, first);
  EXPECT_THAT(err_.text(), HasSubstr("earlier enrolment attempt"));
}

TEST_F(DeviceCommandTest, EnrollUsageAndNetworkErrors) {
  EXPECT_EQ(DeviceEnroll({.server = "id.example.com", .token = "t", .dir = dir_.string()}, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("--server must be an http(s) URL"));
  EXPECT_FALSE(fs::exists(dir_));
  EXPECT_EQ(DeviceEnroll({.server = std::string(kServer), .token = "-", .dir = dir_.string()}, io_),
            2)
      << "an empty input gives no token";
  EXPECT_THAT(err_.text(), HasSubstr("enrolment token is empty"));
  EXPECT_TRUE(requests_.empty());

  // No server: the network failure exits 1.
  EXPECT_EQ(DeviceEnroll({.server = std::string(kServer), .token = "t", .dir = dir_.string()}, io_),
            1);
  EXPECT_THAT(err_.text(), HasSubstr("request failed"));
  EXPECT_FALSE(fs::exists(dir_ / "device.json"));
}

TEST_F(DeviceCommandTest, EnrollReadsTheTokenFromTheInput) {
  Input input(std::string(kEnrolmentToken) + "\n");
  io_.in = input.file();
  server_ = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
    EXPECT_EQ(ParseJson(request.body).value()["token"], kEnrolmentToken);
    return Enrolled(VerifyProof(request));
  };
  EXPECT_EQ(DeviceEnroll({.server = std::string(kServer), .token = "-", .dir = dir_.string()}, io_),
            0)
      << err_.text();
}

TEST_F(DeviceCommandTest, EnrollRefusesAServerThatRegisteredAnotherKey) {
  server_ = [](const HttpRequest&) -> absl::StatusOr<HttpResponse> {
    return Enrolled("someone-elses-thumbprint");
  };
  EXPECT_EQ(DeviceEnroll({.server = std::string(kServer), .token = "t", .dir = dir_.string()}, io_),
            1);
  EXPECT_THAT(err_.text(), HasSubstr("another key"));
  EXPECT_FALSE(fs::exists(dir_ / "device.json"));
}

TEST_F(DeviceCommandTest, TokenExchangesTheSessionTokenAndStoresTheAccessToken) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  Input input(std::string(kSessionToken) + "\n");
  io_.in = input.file();
  server_ = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
    EXPECT_EQ(request.url, "https://id.example.com/provider/oauth2/v1/token");
    EXPECT_EQ(request.content_type, "application/x-www-form-urlencoded");
    EXPECT_EQ(request.body, fmt::format("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%"
                                        "3Atoken-exchange&subject_token={}&subject_token_type="
                                        "urn%3Acustos%3Aparams%3Aoauth%3Atoken-type%3Asession",
                                        kSessionToken));
    VerifyProof(request);
    return HttpResponse{
        200,
        DumpJson(Json{{"access_token", kAccessToken},
                      {"token_type", "DPoP"},
                      {"expires_in", 900},
                      {"issued_token_type", "urn:ietf:params:oauth:token-type:access_token"}})};
  };
  Captured out;
  io_.out = out.file();
  ASSERT_EQ(DeviceToken({.dir = dir_.string()}, io_), 0) << err_.text();
  EXPECT_EQ(out.text(), "token stored, expires at 2026-01-01T00:15:00.000Z\n");
  EXPECT_EQ(Mode(dir_ / "token.json"), 0600u);
  EXPECT_EQ(ParseJson(ReadFile(dir_ / "token.json")).value(),
            (Json{{"access_token", kAccessToken}, {"expires_at", "2026-01-01T00:15:00.000Z"}}));
  EXPECT_THAT(out_.text() + err_.text(), Not(HasSubstr(kSessionToken)));
  EXPECT_THAT(out_.text() + err_.text(), Not(HasSubstr(kAccessToken)));
}

TEST_F(DeviceCommandTest, ARefusedTokenExchangeSaysWhyAndStoresNothing) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  server_ = [](const HttpRequest&) -> absl::StatusOr<HttpResponse> {
    return HttpResponse{400, R"({"error":"invalid_grant","error_description":"the device does )"
                             R"(not comply","reason":"device_noncompliant"})"};
  };
  EXPECT_EQ(DeviceToken({.dir = dir_.string(), .session_token = "s"}, io_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("token refused: HTTP 400: invalid_grant: the device does not "
                                     "comply (device_noncompliant)"));
  EXPECT_THAT(err_.text(), HasSubstr("custos device report"));
  EXPECT_FALSE(fs::exists(dir_ / "token.json"));

  requests_.clear();
  EXPECT_EQ(DeviceToken({.dir = dir_.string()}, io_), 2) << "empty input, no token";
  EXPECT_TRUE(requests_.empty());
}

TEST_F(DeviceCommandTest, CallSendsTheTokenWithABoundProof) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  StoreToken();
  server_ = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
    EXPECT_EQ(request.method, "GET");
    EXPECT_EQ(request.url, "https://id.example.com/provider/api/v1/support/grants?status=ACTIVE");
    EXPECT_EQ(HeaderOf(request, "Authorization"), fmt::format("DPoP {}", kAccessToken));
    EXPECT_TRUE(request.body.empty());
    VerifyProof(request, std::string(kAccessToken));
    return HttpResponse{200, R"([{"id":"grt1"}])"};
  };
  Captured out;
  io_.out = out.file();
  EXPECT_EQ(DeviceCall({.method = "get",
                        .path = "/provider/api/v1/support/grants?status=ACTIVE",
                        .dir = dir_.string()},
                       io_),
            0)
      << err_.text();
  EXPECT_EQ(out.text(), "[{\"id\":\"grt1\"}]\n");
}

TEST_F(DeviceCommandTest, CallSendsJsonAndFailsOnARefusal) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  StoreToken();
  server_ = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.content_type, "application/json");
    EXPECT_EQ(ParseJson(request.body).value(), (Json{{"tenant", "acme"}, {"subject", "login"}}));
    VerifyProof(request, std::string(kAccessToken));
    return HttpResponse{401, R"({"errorCode":"E0000011","errorSummary":"Invalid token provided",)"
                             R"("reason":"token_expired"})"};
  };
  EXPECT_EQ(DeviceCall({.method = "POST",
                        .path = "/provider/api/v1/support/cases",
                        .data = R"({"tenant":"acme","subject":"login"})",
                        .dir = dir_.string()},
                       io_),
            1);
  EXPECT_THAT(err_.text(), HasSubstr("HTTP 401: Invalid token provided (token_expired)"));
  EXPECT_THAT(err_.text(), HasSubstr("custos device token"));
  EXPECT_THAT(out_.text(), HasSubstr("E0000011"));
}

TEST_F(DeviceCommandTest, CallOverHttpSendsTheRequestAsBuilt) {
  const std::string body = R"({"errorCode":"E0000006","errorSummary":"You do not have permission",)"
                           R"("reason":"device_noncompliant"})";
  OneShotServer server(fmt::format(
      "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      body.size(), body));
  ASSERT_EQ(Enroll(server.url()), 0) << err_.text();
  StoreToken();
  io_.send = nullptr;  // the real HttpClient
  Captured out;
  io_.out = out.file();
  EXPECT_EQ(DeviceCall({.method = "put",
                        .path = "/provider/api/v1/support/tenants/acme/log/settings?x=1",
                        .data = R"({"public":true})",
                        .dir = dir_.string()},
                       io_),
            1);
  EXPECT_EQ(out.text(), body + "\n");
  EXPECT_THAT(err_.text(), HasSubstr("HTTP 403: You do not have permission (device_noncompliant)"));

  const std::string received = server.received();
  EXPECT_THAT(received,
              HasSubstr("PUT /provider/api/v1/support/tenants/acme/log/settings?x=1 HTTP/1.1\r\n"));
  EXPECT_THAT(received, HasSubstr(fmt::format("Authorization: DPoP {}\r\n", kAccessToken)));
  EXPECT_THAT(received, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(received, Not(HasSubstr("Expect:")));
  EXPECT_TRUE(received.ends_with("\r\n\r\n{\"public\":true}")) << received;
  const size_t at = received.find("DPoP: ");
  ASSERT_NE(at, std::string::npos);
  const std::string proof = received.substr(at + 6, received.find("\r\n", at) - at - 6);
  EXPECT_TRUE(verifier_
                  .Verify(proof, {.method = "PUT",
                                  .url = server.url() +
                                         "/provider/api/v1/support/tenants/acme/log/settings",
                                  .access_token = std::string(kAccessToken)})
                  .ok());
}

TEST_F(DeviceCommandTest, CallUsageErrorsSendNothing) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  requests_.clear();
  EXPECT_EQ(
      DeviceCall({.method = "GET", .path = "/provider/api/v1/support/me", .dir = dir_.string()},
                 io_),
      2);
  EXPECT_THAT(err_.text(), HasSubstr("no access token"));
  StoreToken();
  EXPECT_EQ(DeviceCall({.method = "FETCH", .path = "/x", .dir = dir_.string()}, io_), 2);
  EXPECT_EQ(DeviceCall(
                {.method = "GET", .path = "provider/api/v1/support/me", .dir = dir_.string()}, io_),
            2);
  EXPECT_EQ(DeviceCall({.method = "GET", .path = "//evil.example/x", .dir = dir_.string()}, io_),
            2);
  EXPECT_EQ(
      DeviceCall({.method = "POST", .path = "/x", .data = "{nope", .dir = dir_.string()}, io_), 2);
  EXPECT_TRUE(requests_.empty());

  clock_.Advance(absl::Minutes(16));
  EXPECT_EQ(DeviceCall({.method = "GET", .path = "/x", .dir = dir_.string()}, io_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("expired at 2026-01-01T00:15:00.000Z"));
  EXPECT_TRUE(requests_.empty());
}

TEST_F(DeviceCommandTest, ReportSignsThePostureAndPrintsCompliance) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  const fs::path system = io_.system_root;
  WriteFile(system / "etc/os-release", "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n");
  WriteFile(system / "proc/4242/comm", "osqueryd\n");
  const fs::path agent = root_ / "agent.json";
  WriteFile(agent, R"({"screen_lock": true})");
  server_ = [this](const HttpRequest& request) -> absl::StatusOr<HttpResponse> {
    EXPECT_EQ(request.url, "https://id.example.com/provider/api/v1/devices/dev1/posture");
    const Json body = ParseJson(request.body).value();
    absl::StatusOr<support::PostureReport> report = support::VerifyPostureReport(
        body["report"].get<std::string>(), support::ParsePublicJwk(jwk_).value(), "dev1",
        clock_.Now(), absl::Minutes(5));
    EXPECT_TRUE(report.ok()) << report.status();
    if (report.ok()) {
      EXPECT_EQ(report->posture.os_name, "Debian GNU/Linux");
      EXPECT_TRUE(report->posture.screen_lock);
      EXPECT_TRUE(report->posture.edr_running);
      EXPECT_FALSE(report->posture.disk_encrypted);
    }
    return HttpResponse{
        200, R"({"id":"dev1","compliance":{"compliant":false,"failures":["disk_not_encrypted",)"
             R"("patch_too_old"]}})"};
  };
  EXPECT_EQ(DeviceReport({.dir = dir_.string(), .posture_file = agent.string()}, io_), 0)
      << err_.text();
  EXPECT_THAT(out_.text(), HasSubstr("Debian GNU/Linux 12, disk encrypted: no, screen lock: yes, "
                                     "EDR running: yes, last patch: unknown"));
  EXPECT_THAT(out_.text(),
              HasSubstr("compliance: not compliant: disk_not_encrypted, patch_too_old"));
}

TEST_F(DeviceCommandTest, ReportRefusesABadPostureFile) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  requests_.clear();
  const fs::path agent = root_ / "agent.json";
  WriteFile(agent, R"({"screenlock": true})");
  EXPECT_EQ(DeviceReport({.dir = dir_.string(), .posture_file = agent.string()}, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("screenlock"));
  WriteFile(agent, "not json");
  EXPECT_EQ(DeviceReport({.dir = dir_.string(), .posture_file = agent.string()}, io_), 2);
  EXPECT_TRUE(requests_.empty());
}

TEST_F(DeviceCommandTest, CommandsWithoutADeviceSaySo) {
  EXPECT_EQ(DeviceShow({.dir = dir_.string()}, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("custos device enroll"));
  EXPECT_EQ(DeviceReport({.dir = dir_.string()}, io_), 2);
  EXPECT_EQ(DeviceToken({.dir = dir_.string(), .session_token = "s"}, io_), 2);
  EXPECT_TRUE(requests_.empty());
}

TEST_F(DeviceCommandTest, AKeyOthersCanReadIsNotUsed) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  fs::permissions(dir_ / "device.key", fs::perms(0644));
  EXPECT_EQ(DeviceShow({.dir = dir_.string()}, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("chmod 600"));
}

TEST_F(DeviceCommandTest, ShowPrintsTheDeviceAndItsThumbprint) {
  ASSERT_EQ(Enroll(), 0) << err_.text();
  StoreToken();
  Captured out;
  io_.out = out.file();
  ASSERT_EQ(DeviceShow({.dir = dir_.string()}, io_), 0) << err_.text();
  const std::string text = out.text();
  EXPECT_THAT(text, HasSubstr("dev1"));
  EXPECT_THAT(text, HasSubstr("vnd1"));
  EXPECT_THAT(text, HasSubstr("https://id.example.com"));
  EXPECT_THAT(text, HasSubstr(support::Thumbprint(support::ParsePublicJwk(jwk_).value())));
  EXPECT_THAT(text, HasSubstr("expires at 2026-01-01T00:15:00.000Z"));
  EXPECT_THAT(text, Not(HasSubstr(kAccessToken)));
}

TEST_F(DeviceCommandTest, DefaultDirectoryFollowsTheEnvironment) {
  const char* home = std::getenv("HOME");
  const std::string saved_home = home != nullptr ? home : "";
  unsetenv("XDG_CONFIG_HOME");
  setenv("CUSTOS_DEVICE_DIR", "/srv/custos-device", 1);
  EXPECT_EQ(DefaultDeviceDir().value(), "/srv/custos-device");
  unsetenv("CUSTOS_DEVICE_DIR");
  setenv("XDG_CONFIG_HOME", "/home/op/.cfg", 1);
  EXPECT_EQ(DefaultDeviceDir().value(), "/home/op/.cfg/custos/device");
  unsetenv("XDG_CONFIG_HOME");
  setenv("HOME", "/home/op", 1);
  EXPECT_EQ(DefaultDeviceDir().value(), "/home/op/.config/custos/device");
  setenv("HOME", saved_home.c_str(), 1);
}

}  // namespace
}  // namespace custos::cli
