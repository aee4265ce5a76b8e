#include "common/logging.h"

#include <cctype>
#include <memory>
#include <ostream>

#include <spdlog/formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/time/clock.h"
#include "common/time_format.h"

namespace custos {
namespace {

// The fields of the Log() call being formatted on this thread. spdlog's synchronous sinks
// format on the calling thread inside logger::log, so this is how fields reach the formatter
// without encoding them into the payload. Plain spdlog calls leave it null.
thread_local const LogFields* t_fields = nullptr;

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

bool IsReserved(std::string_view key) { return key == "time" || key == "level" || key == "msg"; }

// Bare when it cannot be mistaken for a separator or hide a line break; JSON-quoted otherwise.
std::string TextValue(const Json& value) {
  if (!value.is_string()) return DumpJson(value);
  const std::string& s = value.get_ref<const std::string&>();
  bool bare = !s.empty();
  for (char c : s) {
    bare = bare && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '/' ||
                    c == '-' || c == '_' || c == ':' || c == '{' || c == '}');
  }
  return bare ? s : DumpJson(value);
}

class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(bool json) : json_(json) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string time = FormatRfc3339(absl::FromChrono(msg.time));
    std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string line;
    if (json_) {
      OrderedJson j;
      j["time"] = time;
      j["level"] = LevelName(msg.level);
      j["msg"] = payload;
      if (t_fields != nullptr) {
        for (const auto& [key, value] : *t_fields) {
          if (!IsReserved(key)) j[key] = value;
        }
      }
      line = DumpJson(j);
    } else {
      line = time;
      line += ' ';
      line += LevelName(msg.level);
      line += ' ';
      // A message must not be able to forge a second line.
      for (char c : payload) line += (c == '\n' || c == '\r') ? ' ' : c;
      if (t_fields != nullptr) {
        for (const auto& [key, value] : *t_fields) {
          if (IsReserved(key)) continue;
          line += ' ';
          line += key;
          line += '=';
          line += TextValue(value);
        }
      }
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(json_);
  }

 private:
  const bool json_;
};

absl::Status Install(spdlog::sink_ptr sink, std::string_view level, std::string_view format) {
  if (format != "json" && format != "text") {
    return absl::InvalidArgumentError("log format must be json or text");
  }
  spdlog::level::level_enum lvl;
  if (level == "trace") {
    lvl = spdlog::level::trace;
  } else if (level == "debug") {
    lvl = spdlog::level::debug;
  } else if (level == "info") {
    lvl = spdlog::level::info;
  } else if (level == "warn") {
    lvl = spdlog::level::warn;
  } else if (level == "error") {
    lvl = spdlog::level::err;
  } else {
    return absl::InvalidArgumentError("log level must be trace, debug, info, warn or error");
  }
  sink->set_formatter(std::make_unique<LineFormatter>(format == "json"));
  auto logger = std::make_shared<spdlog::logger>("custos", std::move(sink));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsSecretParameter(std::string_view raw_name) {
  // Decoded as the query parser decodes it, so that "pass%77ord" is caught as "password".
  std::string name;
  for (size_t i = 0; i < raw_name.size(); ++i) {
    char c = raw_name[i];
    if (c == '%' && i + 2 < raw_name.size() && HexValue(raw_name[i + 1]) >= 0 &&
        HexValue(raw_name[i + 2]) >= 0) {
      c = static_cast<char>(HexValue(raw_name[i + 1]) * 16 + HexValue(raw_name[i + 2]));
      i += 2;
    }
    name += c;
  }
  name = Lower(name);
  for (std::string_view needle :
       {"token", "password", "passcode", "secret", "code", "assertion", "key"}) {
    if (name.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

absl::Status InitLogging(std::string_view level, std::string_view format) {
  return Install(std::make_shared<spdlog::sinks::stderr_sink_mt>(), level, format);
}

absl::Status InitLoggingTo(std::ostream& out, std::string_view level, std::string_view format) {
  return Install(std::make_shared<spdlog::sinks::ostream_sink_mt>(out, /*force_flush=*/true), level,
                 format);
}

void Log(LogLevel level, std::string_view msg, const LogFields& fields) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  spdlog::level::level_enum lvl = ToSpdlog(level);
  if (!logger->should_log(lvl)) return;
  const LogFields* saved = t_fields;
  t_fields = &fields;
  logger->log(lvl, spdlog::string_view_t(msg.data(), msg.size()));
  t_fields = saved;
}

void LogAccess(const AccessLogEntry& e) {
  constexpr size_t kMaxUserAgent = 256;
  LogFields fields = {
      {"request_id", e.request_id}, {"method", e.method},
      {"route", e.route},           {"path", RedactTarget(e.target)},
      {"status", e.status},         {"duration_ms", e.duration_ms},
      {"remote_ip", e.remote_ip},   {"user_agent", e.user_agent.substr(0, kMaxUserAgent)},
  };
  if (!e.error_id.empty()) fields.emplace_back("error_id", e.error_id);
  Log(LogLevel::kInfo, "request", fields);
}

std::string RedactTarget(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  std::string_view query = target.substr(q + 1);
  bool first = true;
  while (true) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    if (!first) out += '&';
    first = false;
    size_t eq = part.find('=');
    std::string_view name = part.substr(0, eq);
    if (eq != std::string_view::npos && IsSecretParameter(name)) {
      out += name;
      out += "=REDACTED";
    } else {
      out += part;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace custos
