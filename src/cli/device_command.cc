#include "cli/device_command.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/files.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "support/device_key.h"
#include "support/jwk.h"
#include "support/posture.h"

namespace custos::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kKeyFile = "device.key";
constexpr std::string_view kDeviceFile = "device.json";
constexpr std::string_view kTokenFile = "token.json";

constexpr std::string_view kEnrollPath = "/provider/api/v1/devices/enroll";
constexpr std::string_view kTokenPath = "/provider/oauth2/v1/token";
constexpr std::string_view kTokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr std::string_view kSessionTokenType = "urn:custos:params:oauth:token-type:session";

constexpr size_t kMaxLocalFile = 1 << 20;

// A failure and the exit code it gets.
struct Failure {
  int code;
  std::string message;
};

int Fail(const DeviceCommandIo& io, const Failure& failure) {
  fmt::print(io.err, "custos: {}\n", failure.message);
  std::fflush(io.err);
  return failure.code;
}

Failure Usage(std::string message) { return {kExitUsage, std::move(message)}; }
Failure Refused(std::string message) { return {kExitFailed, std::move(message)}; }
Failure Usage(const absl::Status& status) { return Usage(std::string(status.message())); }

// Text from the server, fit for a terminal: no control characters (escape sequences), bounded.
std::string Printable(std::string_view text, size_t limit = 300) {
  std::string out;
  for (const char c : text.substr(0, limit)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (text.size() > limit) out += "...";
  return out;
}

std::string StringMember(const Json& j, std::string_view name) {
  if (!j.is_object()) return "";
  auto it = j.find(std::string(name));
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// "HTTP 401: Invalid token provided (token_expired)" from a management API error, or
// "HTTP 400: invalid_grant: the device does not comply (device_noncompliant)" from an OAuth one.
std::string DescribeError(const HttpResponse& response) {
  std::string text = fmt::format("HTTP {}", response.status);
  const absl::StatusOr<Json> body = ParseJson(response.body);
  const Json j = body.ok() ? *body : Json();
  std::string summary = StringMember(j, "errorSummary");
  if (summary.empty()) {
    const std::string error = StringMember(j, "error");
    const std::string description = StringMember(j, "error_description");
    summary =
        error.empty() ? description : (description.empty() ? error : error + ": " + description);
  }
  if (!summary.empty()) text += ": " + Printable(summary);
  if (const std::string reason = StringMember(j, "reason"); !reason.empty()) {
    text += fmt::format(" ({})", Printable(reason, 64));
  }
  return text;
}

std::string ReasonOf(const HttpResponse& response) {
  const absl::StatusOr<Json> body = ParseJson(response.body);
  return body.ok() ? StringMember(*body, "reason") : "";
}

// What the operator can do about a refusal, when we know.
std::string HintFor(std::string_view reason) {
  if (reason == "device_noncompliant") {
    return "; send a fresh posture report with `custos device report`";
  }
  if (reason == "token_expired" || reason == "token_invalid" || reason == "token_revoked" ||
      reason == "session_ended") {
    return "; get a new token with `custos device token`";
  }
  return "";
}

bool Is2xx(const HttpResponse& response) { return response.status >= 200 && response.status < 300; }

absl::StatusOr<std::string> ReadLocalFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string message = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  std::string data;
  char buffer[8192];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::InternalError(fmt::format("cannot read {}: {}", path, std::strerror(err)));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
    if (data.size() > kMaxLocalFile) {
      ::close(fd);
      return absl::InvalidArgumentError(fmt::format("{} is too large", path));
    }
  }
  ::close(fd);
  return data;
}

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadLocalFile(path));
  absl::StatusOr<Json> json = ParseJson(text);
  if (!json.ok() || !json->is_object()) {
    return absl::InvalidArgumentError(fmt::format("{} is not a JSON object", path));
  }
  return json;
}

std::optional<Failure> ResolveDir(const std::string& flag, std::string& dir) {
  if (!flag.empty()) {
    dir = flag;
    return std::nullopt;
  }
  absl::StatusOr<std::string> found = DefaultDeviceDir();
  if (!found.ok()) return Usage(found.status());
  dir = *found;
  return std::nullopt;
}

std::string InDir(const std::string& dir, std::string_view file) {
  return (fs::path(dir) / file).string();
}

// Device ids go into URL paths; the server makes them of letters and digits.
bool IsSafeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

// "https://id.example.com" from what the user typed; nullopt unless it is an http(s) URL
// without query or fragment.
std::optional<std::string> NormalizeServer(std::string server) {
  if (!server.starts_with("http://") && !server.starts_with("https://")) return std::nullopt;
  if (server.find_first_of("?# \t\r\n") != std::string::npos) return std::nullopt;
  while (server.ends_with("/")) server.pop_back();
  if (server.ends_with(":") || server == "http:/" || server == "https:/") return std::nullopt;
  return server;
}

// True for a server URL on this machine, where plain http crosses no network.
bool IsLoopback(std::string_view server) {
  std::string_view host = server.substr(server.find("//") + 2);
  host = host.substr(0, host.find('/'));
  if (host.starts_with("[::1]")) return true;
  host = host.substr(0, host.rfind(':') == std::string_view::npos ? host.size() : host.rfind(':'));
  return host == "localhost" ||
         (host.starts_with("127.") && host.find_first_not_of("0123456789.") == host.npos);
}

// An enrolled device: device.json and its key.
struct Device {
  std::string dir;
  std::string server;
  std::string id;
  std::string vendor_id;
  std::string name;
  std::unique_ptr<support::FileDeviceKey> key;
};

absl::StatusOr<Device> LoadDevice(const std::string& dir) {
  const std::string path = InDir(dir, kDeviceFile);
  absl::StatusOr<Json> json = ReadJsonFile(path);
  if (absl::IsNotFound(json.status())) {
    return absl::FailedPreconditionError(
        fmt::format("no device is enrolled in {}: run `custos device enroll` first (or give the "
                    "directory with --dir)",
                    dir));
  }
  RETURN_IF_ERROR(json.status());
  Device device;
  device.dir = dir;
  std::optional<std::string> server = NormalizeServer(StringMember(*json, "server"));
  device.id = StringMember(*json, "deviceId");
  device.vendor_id = StringMember(*json, "vendorId");
  device.name = StringMember(*json, "name");
  if (!server || !IsSafeId(device.id)) {
    return absl::InvalidArgumentError(
        fmt::format("{} is damaged: it needs \"server\" (an http(s) URL) and \"deviceId\"", path));
  }
  device.server = *server;
  ASSIGN_OR_RETURN(device.key, support::FileDeviceKey::Load(InDir(dir, kKeyFile)));
  return device;
}

std::string Thumbprint(const support::DeviceKey& key) {
  absl::StatusOr<support::PublicJwk> jwk = support::ParsePublicJwk(key.PublicJwk());
  return jwk.ok() ? support::Thumbprint(*jwk) : "(unreadable key)";
}

// Sends through io.send, or through one HttpClient made on first use.
class Transport {
 public:
  explicit Transport(const DeviceCommandIo& io) : io_(io) {}

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) {
    if (io_.send) return io_.send(request);
    if (!client_) client_ = std::make_unique<HttpClient>(HttpFetchOptions{});
    return client_->Send(request);
  }

 private:
  const DeviceCommandIo& io_;
  std::unique_ptr<HttpClient> client_;
};

Failure Unreachable(const absl::Status& status) {
  return Refused(fmt::format("request failed: {}", std::string(status.message())));
}

// One line from `in` without its line end and surrounding blanks; with `prompt` and without
// echo when `in` is a terminal.
std::string ReadSecretLine(const DeviceCommandIo& io, std::string_view prompt) {
  const int fd = ::fileno(io.in);
  const bool terminal = fd >= 0 && ::isatty(fd) == 1;
  termios saved{};
  if (terminal) {
    fmt::print(io.err, "{}: ", prompt);
    std::fflush(io.err);
    if (::tcgetattr(fd, &saved) == 0) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(fd, TCSAFLUSH, &quiet);
    }
  }
  char* buffer = nullptr;
  size_t capacity = 0;
  const ssize_t n = ::getline(&buffer, &capacity, io.in);
  // Up to a NUL too: nothing after one can be part of a token.
  std::string line = n > 0 ? std::string(buffer, ::strnlen(buffer, static_cast<size_t>(n))) : "";
  if (buffer != nullptr) {
    std::memset(buffer, 0, capacity);
    std::free(buffer);
  }
  if (terminal) {
    ::tcsetattr(fd, TCSAFLUSH, &saved);
    fmt::print(io.err, "\n");
  }
  const size_t begin = line.find_first_not_of(" \t\r\n");
  const size_t end = line.find_last_not_of(" \t\r\n");
  return begin == std::string::npos ? "" : line.substr(begin, end - begin + 1);
}

// application/x-www-form-urlencoded value.
std::string FormEncode(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string WithNewline(std::string text) {
  if (!text.empty() && text.back() != '\n') text.push_back('\n');
  return text;
}

std::string YesNo(bool value) { return value ? "yes" : "no"; }

std::string DescribePosture(const support::Posture& p) {
  return fmt::format("{} {}, disk encrypted: {}, screen lock: {}, EDR running: {}, last patch: {}",
                     Printable(p.os_name), Printable(p.os_version), YesNo(p.disk_encrypted),
                     YesNo(p.screen_lock), YesNo(p.edr_running), p.last_patch.value_or("unknown"));
}

}  // namespace

absl::StatusOr<std::string> DefaultDeviceDir() {
  if (const char* dir = std::getenv("CUSTOS_DEVICE_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir);
  }
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config != nullptr && *config != '\0') {
    return (fs::path(config) / "custos" / "device").string();
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return (fs::path(home) / ".config" / "custos" / "device").string();
  }
  return absl::FailedPreconditionError(
      "no device directory: give --dir, or set CUSTOS_DEVICE_DIR or HOME");
}

int DeviceEnroll(const DeviceEnrollFlags& flags, const DeviceCommandIo& io) {
  std::string dir;
  if (std::optional<Failure> f = ResolveDir(flags.dir, dir)) return Fail(io, *f);
  const std::optional<std::string> server = NormalizeServer(flags.server);
  if (!server) {
    return Fail(io, Usage(fmt::format("--server must be an http(s) URL such as "
                                      "https://id.example.com, not \"{}\"",
                                      Printable(flags.server, 100))));
  }
  const std::string device_path = InDir(dir, kDeviceFile);
  if (absl::StatusOr<Json> existing = ReadJsonFile(device_path); existing.ok()) {
    return Fail(io, Usage(fmt::format(
                        "{} already holds device {} (of {}); a directory holds one device: give "
                        "another --dir, or remove {} to enrol this one again",
                        dir, Printable(StringMember(*existing, "deviceId"), 64),
                        Printable(StringMember(*existing, "server"), 200), dir)));
  } else if (!absl::IsNotFound(existing.status())) {
    return Fail(io, Usage(fmt::format("{} already holds a device file that cannot be read ({}); "
                                      "give another --dir",
                                      dir, std::string(existing.status().message()))));
  }
  std::string token = flags.token;
  if (token == "-") token = ReadSecretLine(io, "enrolment token");
  if (token.empty()) return Fail(io, Usage("the enrolment token is empty"));
  if (server->starts_with("http://") && !IsLoopback(*server)) {
    fmt::print(io.err,
               "custos: warning: {} is plain http; the enrolment token crosses the network "
               "unencrypted\n",
               *server);
  }

  // A key without device.json is what an attempt the server refused (or that never reached it)
  // leaves behind; it never left this directory, so the next attempt uses it.
  const std::string key_path = InDir(dir, kKeyFile);
  absl::StatusOr<std::unique_ptr<support::FileDeviceKey>> key =
      support::FileDeviceKey::Create(key_path);
  if (absl::IsAlreadyExists(key.status())) {
    key = support::FileDeviceKey::Load(key_path);
    if (key.ok()) {
      fmt::print(io.err, "custos: using the key {} left by an earlier enrolment attempt\n",
                 key_path);
    }
  }
  if (!key.ok()) return Fail(io, Usage(key.status()));

  const std::string url = *server + std::string(kEnrollPath);
  absl::StatusOr<std::string> proof =
      support::MakeDpopProof(**key, "POST", url, std::nullopt, io.clock->Now(), *io.random);
  if (!proof.ok()) return Fail(io, Refused(std::string(proof.status().message())));
  const Json body = {{"token", token}, {"jwk", (*key)->PublicJwk()}};
  Transport transport(io);
  absl::StatusOr<HttpResponse> response =
      transport.Send(HttpRequest{.method = "POST",
                                 .url = url,
                                 .headers = {{"DPoP", *proof}, {"Accept", "application/json"}},
                                 .body = DumpJson(body),
                                 .content_type = "application/json"});
  if (!response.ok()) return Fail(io, Unreachable(response.status()));
  if (!Is2xx(*response)) {
    return Fail(io, Refused("enrolment refused: " + DescribeError(*response)));
  }

  const absl::StatusOr<Json> device = ParseJson(response->body);
  const std::string id = device.ok() ? StringMember(*device, "id") : "";
  if (!IsSafeId(id)) {
    return Fail(io, Refused(fmt::format("the server answered HTTP {} without a device id",
                                        response->status)));
  }
  const std::string jkt = Thumbprint(**key);
  if (const std::string registered = StringMember(*device, "jkt");
      !registered.empty() && registered != jkt) {
    return Fail(io, Refused(fmt::format("the server registered device {} with another key ({}, "
                                        "this key is {}); do not use it",
                                        id, Printable(registered, 64), jkt)));
  }
  const Json saved = {{"server", *server},
                      {"deviceId", id},
                      {"vendorId", StringMember(*device, "vendorId")},
                      {"name", StringMember(*device, "name")}};
  if (absl::Status st = WriteFileAtomically(device_path, DumpJson(saved) + "\n"); !st.ok()) {
    return Fail(io, Refused(fmt::format("device {} is enrolled but {} could not be written: {}", id,
                                        device_path, std::string(st.message()))));
  }
  fmt::print(io.out, "enrolled device {} ({}) of vendor {}\nkey thumbprint: {}\n", id,
             Printable(saved["name"].get<std::string>(), 100),
             Printable(saved["vendorId"].get<std::string>(), 64), jkt);
  fmt::print(io.out, "next: `custos device report` to send its posture\n");
  return kExitOk;
}

int DeviceReport(const DeviceReportFlags& flags, const DeviceCommandIo& io) {
  std::string dir;
  if (std::optional<Failure> f = ResolveDir(flags.dir, dir)) return Fail(io, *f);
  absl::StatusOr<Device> device = LoadDevice(dir);
  if (!device.ok()) return Fail(io, Usage(device.status()));

  support::Posture posture = support::CollectPosture(flags.edr_processes, io.system_root);
  if (!flags.posture_file.empty()) {
    absl::StatusOr<Json> overrides = ReadJsonFile(flags.posture_file);
    if (!overrides.ok()) return Fail(io, Usage(overrides.status()));
    if (absl::Status st = support::MergePosture(posture, *overrides); !st.ok()) {
      return Fail(io, Usage(fmt::format("{}: {}", flags.posture_file, std::string(st.message()))));
    }
  }
  absl::StatusOr<std::string> report =
      support::MakePostureReport(*device->key, device->id, posture, io.clock->Now(), *io.random);
  if (!report.ok()) return Fail(io, Refused(std::string(report.status().message())));

  const std::string url =
      fmt::format("{}/provider/api/v1/devices/{}/posture", device->server, device->id);
  Transport transport(io);
  absl::StatusOr<HttpResponse> response =
      transport.Send(HttpRequest{.method = "POST",
                                 .url = url,
                                 .headers = {{"Accept", "application/json"}},
                                 .body = DumpJson(Json{{"report", *report}}),
                                 .content_type = "application/json"});
  if (!response.ok()) return Fail(io, Unreachable(response.status()));
  if (!Is2xx(*response)) {
    return Fail(io, Refused("posture report refused: " + DescribeError(*response)));
  }
  fmt::print(io.out, "posture reported: {}\n", DescribePosture(posture));

  const absl::StatusOr<Json> view = ParseJson(response->body);
  const Json compliance =
      view.ok() && view->is_object() ? view->value("compliance", Json()) : Json();
  if (!compliance.is_object() || !compliance.contains("compliant") ||
      !compliance["compliant"].is_boolean()) {
    fmt::print(io.out, "compliance: unknown (the server did not say)\n");
  } else if (compliance["compliant"].get<bool>()) {
    fmt::print(io.out, "compliance: compliant\n");
  } else {
    std::vector<std::string> failures;
    if (compliance.contains("failures") && compliance["failures"].is_array()) {
      for (const Json& f : compliance["failures"]) {
        if (f.is_string()) failures.push_back(Printable(f.get<std::string>(), 64));
      }
    }
    fmt::print(io.out, "compliance: not compliant: {}\n",
               failures.empty() ? "no reason given" : fmt::format("{}", fmt::join(failures, ", ")));
  }
  return kExitOk;
}

int DeviceToken(const DeviceTokenFlags& flags, const DeviceCommandIo& io) {
  std::string dir;
  if (std::optional<Failure> f = ResolveDir(flags.dir, dir)) return Fail(io, *f);
  absl::StatusOr<Device> device = LoadDevice(dir);
  if (!device.ok()) return Fail(io, Usage(device.status()));
  const std::string session_token = flags.session_token.empty() || flags.session_token == "-"
                                        ? ReadSecretLine(io, "provider session token")
                                        : flags.session_token;
  if (session_token.empty()) {
    return Fail(io, Usage("no session token: give --session-token or pipe it to the input"));
  }

  const std::string url = device->server + std::string(kTokenPath);
  absl::StatusOr<std::string> proof =
      support::MakeDpopProof(*device->key, "POST", url, std::nullopt, io.clock->Now(), *io.random);
  if (!proof.ok()) return Fail(io, Refused(std::string(proof.status().message())));
  const std::string form = fmt::format("grant_type={}&subject_token={}&subject_token_type={}",
                                       FormEncode(kTokenExchangeGrant), FormEncode(session_token),
                                       FormEncode(kSessionTokenType));
  Transport transport(io);
  absl::StatusOr<HttpResponse> response =
      transport.Send(HttpRequest{.method = "POST",
                                 .url = url,
                                 .headers = {{"DPoP", *proof}, {"Accept", "application/json"}},
                                 .body = form,
                                 .content_type = "application/x-www-form-urlencoded"});
  if (!response.ok()) return Fail(io, Unreachable(response.status()));
  if (!Is2xx(*response)) {
    return Fail(
        io, Refused("token refused: " + DescribeError(*response) + HintFor(ReasonOf(*response))));
  }

  const absl::StatusOr<Json> answer = ParseJson(response->body);
  const std::string access_token = answer.ok() ? StringMember(*answer, "access_token") : "";
  const Json expires_in =
      answer.ok() && answer->is_object() ? answer->value("expires_in", Json()) : Json();
  // More than a year is not an operator token's lifetime; refusing it also keeps the time sane.
  if (access_token.empty() || !expires_in.is_number_integer() || expires_in.get<int64_t>() <= 0 ||
      expires_in.get<int64_t>() > 366 * 86400) {
    return Fail(io, Refused("the token endpoint answered without a valid access_token and "
                            "expires_in"));
  }
  std::string token_type = StringMember(*answer, "token_type");
  for (char& c : token_type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (token_type != "dpop") {
    return Fail(io, Refused(fmt::format("the server issued a \"{}\" token, not a DPoP-bound one; "
                                        "it was not stored",
                                        Printable(token_type, 32))));
  }
  const std::string expires_at =
      FormatRfc3339(io.clock->Now() + absl::Seconds(expires_in.get<int64_t>()));
  const std::string path = InDir(dir, kTokenFile);
  if (absl::Status st = WriteFileAtomically(
          path, DumpJson(Json{{"access_token", access_token}, {"expires_at", expires_at}}) + "\n");
      !st.ok()) {
    return Fail(io, Usage(st));
  }
  fmt::print(io.out, "token stored, expires at {}\n", expires_at);
  return kExitOk;
}

int DeviceCall(const DeviceCallFlags& flags, const DeviceCommandIo& io) {
  std::string method = flags.method;
  for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (method != "GET" && method != "POST" && method != "PUT" && method != "PATCH" &&
      method != "DELETE") {
    return Fail(io, Usage(fmt::format("method must be GET, POST, PUT, PATCH or DELETE, not \"{}\"",
                                      Printable(flags.method, 16))));
  }
  if (!flags.path.starts_with("/") || flags.path.starts_with("//") ||
      flags.path.find_first_of(" \t\r\n") != std::string::npos) {
    return Fail(io, Usage("the path must start with / and name a path on the server, e.g. "
                          "/provider/api/v1/support/me"));
  }
  if (!flags.data.empty()) {
    if (method == "GET") return Fail(io, Usage("a GET request has no --data"));
    if (!ParseJson(flags.data).ok()) return Fail(io, Usage("--data is not valid JSON"));
  }
  std::string dir;
  if (std::optional<Failure> f = ResolveDir(flags.dir, dir)) return Fail(io, *f);
  absl::StatusOr<Device> device = LoadDevice(dir);
  if (!device.ok()) return Fail(io, Usage(device.status()));

  const std::string token_path = InDir(dir, kTokenFile);
  absl::StatusOr<Json> stored = ReadJsonFile(token_path);
  if (absl::IsNotFound(stored.status())) {
    return Fail(io, Usage("no access token: get one with `custos device token`"));
  }
  if (!stored.ok()) return Fail(io, Usage(stored.status()));
  const std::string token = StringMember(*stored, "access_token");
  const absl::StatusOr<absl::Time> expires = ParseRfc3339(StringMember(*stored, "expires_at"));
  if (token.empty() || !expires.ok()) {
    return Fail(io, Usage(fmt::format("{} is damaged: get a new token with `custos device token`",
                                      token_path)));
  }
  if (*expires <= io.clock->Now()) {
    return Fail(io, Refused(fmt::format("the access token expired at {}; get a new one with "
                                        "`custos device token`",
                                        FormatRfc3339(*expires))));
  }

  const std::string url = device->server + flags.path;
  absl::StatusOr<std::string> proof = support::MakeDpopProof(
      *device->key, method, url, std::string_view(token), io.clock->Now(), *io.random);
  if (!proof.ok()) return Fail(io, Refused(std::string(proof.status().message())));
  Transport transport(io);
  absl::StatusOr<HttpResponse> response =
      transport.Send(HttpRequest{.method = method,
                                 .url = url,
                                 .headers = {{"Authorization", "DPoP " + token},
                                             {"DPoP", *proof},
                                             {"Accept", "application/json"}},
                                 .body = flags.data,
                                 .content_type = flags.data.empty() ? "" : "application/json"});
  if (!response.ok()) return Fail(io, Unreachable(response.status()));
  std::fputs(WithNewline(response->body).c_str(), io.out);
  std::fflush(io.out);
  if (!Is2xx(*response)) {
    return Fail(io, Refused(DescribeError(*response) + HintFor(ReasonOf(*response))));
  }
  return kExitOk;
}

int DeviceShow(const DeviceShowFlags& flags, const DeviceCommandIo& io) {
  std::string dir;
  if (std::optional<Failure> f = ResolveDir(flags.dir, dir)) return Fail(io, *f);
  absl::StatusOr<Device> device = LoadDevice(dir);
  if (!device.ok()) return Fail(io, Usage(device.status()));
  std::string token_state = "none (get one with `custos device token`)";
  if (absl::StatusOr<Json> stored = ReadJsonFile(InDir(dir, kTokenFile)); stored.ok()) {
    const absl::StatusOr<absl::Time> expires = ParseRfc3339(StringMember(*stored, "expires_at"));
    if (!expires.ok()) {
      token_state = "damaged";
    } else {
      token_state = fmt::format("{} {}", *expires > io.clock->Now() ? "expires at" : "expired at",
                                FormatRfc3339(*expires));
    }
  }
  fmt::print(io.out,
             "device:     {}\n"
             "name:       {}\n"
             "vendor:     {}\n"
             "server:     {}\n"
             "key:        {} {}, thumbprint {}\n"
             "token:      {}\n"
             "directory:  {}\n",
             device->id, Printable(device->name, 100), Printable(device->vendor_id, 64),
             device->server, device->key->Algorithm(), InDir(dir, kKeyFile),
             Thumbprint(*device->key), token_state, dir);
  return kExitOk;
}

}  // namespace custos::cli
