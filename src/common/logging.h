#pragma once

// Process logging over spdlog. After InitLogging, both Log() and plain spdlog calls
// (spdlog::info(...)) write one line per message to stderr:
//
//   json: {"time":"2026-01-01T00:00:00.123Z","level":"info","msg":"request","status":200,...}
//   text: 2026-01-01T00:00:00.123Z info request status=200 ...
//
// Secrets are kept out by construction: the access log line (LogAccess) is built from a fixed
// set of fields that has no place for headers or bodies, and its target has the values of
// secret-bearing query parameters replaced. Callers of Log() must not pass secrets as fields.
//
// Thread-safety: InitLogging* must be called before other threads log (at start-up, or in a
// test before the server starts); Log and LogAccess are thread-safe.

#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/json.h"

namespace custos {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// Structured fields of one line, in order. Values are JSON so numbers stay numbers. Keys
// "time", "level" and "msg" are reserved and dropped.
using LogFields = std::vector<std::pair<std::string, Json>>;

// level: trace, debug, info, warn or error; format: json or text. Writes to stderr.
absl::Status InitLogging(std::string_view level, std::string_view format);
// The same, writing to `out`, which must outlive all logging until the next InitLogging*.
absl::Status InitLoggingTo(std::ostream& out, std::string_view level, std::string_view format);

void Log(LogLevel level, std::string_view msg, const LogFields& fields = {});

// One line per HTTP request ("msg":"request").
struct AccessLogEntry {
  std::string_view request_id;
  std::string_view method;
  std::string_view route;   // the matched pattern, e.g. "/t/{tenant}/api/v1/users/{id}"
  std::string_view target;  // the raw request target; logged through RedactTarget
  int status = 0;
  double duration_ms = 0;
  std::string_view remote_ip;
  std::string_view user_agent;  // truncated to 256 bytes
  std::string_view error_id;    // set when the server itself produced an error response
};
void LogAccess(const AccessLogEntry& entry);

// `target` with the value of every query parameter whose name may carry a secret replaced by
// "REDACTED": names containing (case-insensitively) token, password, passcode, secret, code,
// assertion or key, which covers token, password, passCode, stateToken, sessionToken, code,
// client_secret, id_token_hint and code_verifier.
std::string RedactTarget(std::string_view target);

}  // namespace custos
