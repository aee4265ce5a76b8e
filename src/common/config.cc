#include "common/config.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <variant>

#include <toml++/toml.h>

#include <fmt/format.h>
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"

namespace custos {
namespace {

using Field = std::variant<std::string Config::*, int Config::*, int64_t Config::*,
                           absl::Duration Config::*, bool Config::*>;

struct Setting {
  SettingInfo info;
  Field field;
};

const std::vector<Setting>& Settings() {
  static const auto* settings = new std::vector<Setting>{
      {{"server.listen_address", "Address to listen on."}, &Config::listen_address},
      {{"server.port", "TCP port; 0 picks a free one and prints it."}, &Config::port},
      {{"server.network_threads", "Threads that run the network I/O."}, &Config::network_threads},
      {{"server.worker_threads",
        "Threads for blocking work (password hashing, store); 0 means one per core."},
       &Config::worker_threads},
      {{"server.max_body_bytes", "Largest request body accepted; larger gets 413."},
       &Config::max_body_bytes},
      {{"server.request_timeout", "Time allowed to receive one request."},
       &Config::request_timeout},
      {{"server.idle_timeout", "Keep-alive connections idle this long are closed."},
       &Config::idle_timeout},
      {{"server.shutdown_grace", "On SIGTERM/SIGINT, how long in-flight requests may finish."},
       &Config::shutdown_grace},
      {{"server.public_base_url",
        "Base URL clients use to reach Custos (links, cookies); empty means derived from the "
        "listen address."},
       &Config::public_base_url},
      {{"server.max_connections",
        "Open connections allowed; further ones are closed as soon as they are accepted."},
       &Config::max_connections},
      {{"server.max_pending_requests",
        "Requests waiting for or running on the worker threads; further ones get 503."},
       &Config::max_pending_requests},
      {{"server.authn_rate_per_ip",
        "Sign-in API requests per second allowed per client address; 0 turns the limit off."},
       &Config::authn_rate_per_ip},
      {{"server.authn_burst_per_ip",
        "Sign-in API requests per client address allowed in a burst above the rate."},
       &Config::authn_burst_per_ip},
      {{"server.refused_auth_per_minute_per_ip",
        "Refused API credentials per minute per client address that are answered and logged; "
        "0 turns the limit off."},
       &Config::refused_auth_per_minute_per_ip},
      {{"server.refused_auth_burst_per_ip",
        "Refused API credentials one client address may send at once before the rate applies."},
       &Config::refused_auth_burst_per_ip},
      {{"store.data_dir", "Directory for the SQLite database and the sealing key."},
       &Config::data_dir},
      {{"store.synchronous",
        "SQLite durability: full (fsync at every commit) or normal (fsync at WAL checkpoints)."},
       &Config::store_synchronous},
      {{"store.url",
        "Empty for the embedded SQLite store in store.data_dir; postgres://user@host/db for a "
        "PostgreSQL database that several custos serve processes share. Prefer the "
        "CUSTOS_STORE_URL environment variable when it holds a password."},
       &Config::store_url},
      {{"store.connections", "PostgreSQL connections each process keeps open (2 to 1000)."},
       &Config::store_connections},
      {{"log.level", "trace, debug, info, warn, error."}, &Config::log_level},
      {{"log.format", "json (one object per line) or text."}, &Config::log_format},
      {{"system_log.sequence_interval",
        "How often the log sequencer looks for new events; a checkpoint covers an event about "
        "this long after its commit."},
       &Config::sequence_interval},
      {{"system_log.batch_size", "Events the sequencer appends per round at most."},
       &Config::sequence_batch_size},
      {{"system_log.provider_public",
        "Serve the provider log (/provider/log/) without a provider token."},
       &Config::provider_log_public},
      {{"system_log.tile_cache", "Full Merkle tiles kept in memory for proofs (16 KiB each)."},
       &Config::tile_cache},
      {{"password.argon2_memory_kib", "Argon2id memory cost in KiB."}, &Config::argon2_memory_kib},
      {{"password.argon2_iterations", "Argon2id time cost (passes)."}, &Config::argon2_iterations},
      {{"password.min_length", "Shortest password accepted, in characters (at least 8)."},
       &Config::password_min_length},
      {{"password.max_length", "Longest password accepted, in characters (at least 64)."},
       &Config::password_max_length},
      {{"authn.lockout_threshold", "Consecutive failed sign-ins that lock a user out (1 to 100)."},
       &Config::lockout_threshold},
      {{"authn.session_idle_timeout", "A session unused this long ends."},
       &Config::session_idle_timeout},
      {{"authn.session_lifetime", "A session ends this long after sign-in, used or not."},
       &Config::session_lifetime},
      {{"authn.state_token_lifetime", "Time to finish a multi-factor sign-in."},
       &Config::state_token_lifetime},
      {{"authn.recovery_token_lifetime", "Validity of a password reset token."},
       &Config::recovery_token_lifetime},
      {{"authn.totp_skew_steps", "TOTP time steps accepted either side of now (0 to 2)."},
       &Config::totp_skew_steps},
      {{"support.enrollment_token_lifetime", "Validity of a single-use device enrolment token."},
       &Config::enrollment_token_lifetime},
      {{"support.operator_token_lifetime", "Lifetime of a device-bound operator access token."},
       &Config::operator_token_lifetime},
      {{"support.dpop_max_age",
        "A DPoP proof is accepted this long after its iat (and this far ahead of the clock)."},
       &Config::dpop_max_age},
      {{"support.access_request_lifetime", "A pending access request expires after this long."},
       &Config::access_request_lifetime},
      {{"support.grant_default_duration", "Grant length when the request names none."},
       &Config::grant_default_duration},
      {{"support.grant_max_duration", "Longest grant a request, approval or extension may give."},
       &Config::grant_max_duration},
      {{"support.confirmation_lifetime",
        "A guarded-action confirmation lapses this long after it was asked for."},
       &Config::confirmation_lifetime},
      {{"support.posture_max_age",
        "Device policy default: a posture report older than this makes the device non-compliant."},
       &Config::posture_max_age},
      {{"support.required_posture",
        "Device policy default: comma-separated signals that must be true (disk_encrypted, "
        "screen_lock, edr_running); empty requires none."},
       &Config::required_posture},
      {{"support.max_patch_age",
        "Device policy default: the last patch must be this recent; 0 does not check it."},
       &Config::max_patch_age},
      {{"support.anomaly_max_tenants",
        "Alert when one operator reaches more tenants than this within the window; 0 is off."},
       &Config::anomaly_max_tenants},
      {{"support.anomaly_window", "Time window of the anomaly rules that count."},
       &Config::anomaly_window},
      {{"support.anomaly_max_refused_actions",
        "Alert when one operator has this many guarded actions refused within the window; 0 is "
        "off."},
       &Config::anomaly_max_refused_actions},
      {{"support.anomaly_new_device_or_network",
        "Alert when an operator works from a device or network (/24, /64) not seen before."},
       &Config::anomaly_new_device_or_network},
      {{"support.anomaly_suspend_operator",
        "Suspend an operator (sessions and tokens end) when an anomaly rule fires."},
       &Config::anomaly_suspend_operator},
      {{"notify.enabled", "Run the worker that delivers incident notifications."},
       &Config::notify_enabled},
      {{"notify.workers", "Notifications delivered at once (1 to 64)."}, &Config::notify_workers},
      {{"notify.lease",
        "A notification being delivered is leased this long; after a crash it is tried again "
        "once the lease lapses."},
       &Config::notify_lease},
      {{"notify.poll_interval", "How often an idle notifier looks for due notifications."},
       &Config::notify_poll_interval},
      {{"notify.backoff_base", "Wait before the first retry; doubled after each failed attempt."},
       &Config::notify_backoff_base},
      {{"notify.backoff_cap", "Longest wait between two attempts."}, &Config::notify_backoff_cap},
      {{"notify.max_attempts", "Attempts before a notification is given up (FAILED)."},
       &Config::notify_max_attempts},
      {{"notify.smtp_url",
        "SMTP relay for e-mail contacts: smtp://host:port (STARTTLS when offered) or "
        "smtps://host:port; empty means e-mail cannot be sent."},
       &Config::notify_smtp_url},
      {{"notify.smtp_user", "User name for SMTP AUTH; empty sends no AUTH."},
       &Config::notify_smtp_user},
      {{"notify.smtp_password", "Password for SMTP AUTH. Never logged or shown."},
       &Config::notify_smtp_password},
      {{"notify.mail_from", "From address of notification e-mails."}, &Config::notify_mail_from},
      {{"notify.allow_http_webhooks",
        "Accept http:// webhook URLs to any host (http:// to loopback is always accepted)."},
       &Config::notify_allow_http_webhooks},
      {{"console.dir",
        "Directory of the built web console served at /console/; empty means the one compiled "
        "in (<source dir>/web/dist, made by `make web`)."},
       &Config::console_dir},
      {{"console.admin_group",
        "Name of the group whose ACTIVE members are a tenant's console admins (in the provider "
        "tenant: the security team)."},
       &Config::console_admin_group},
  };
  return *settings;
}

const Setting* Find(std::string_view key) {
  for (const Setting& s : Settings()) {
    if (s.info.key == key) return &s;
  }
  return nullptr;
}

absl::StatusOr<absl::Duration> ParseDurationText(std::string_view key, std::string_view value) {
  absl::Duration d;
  if (!absl::ParseDuration(std::string(value), &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        fmt::format("setting {}: '{}' is not a duration (examples: 30s, 5m, 2h)", key, value));
  }
  return d;
}

}  // namespace

const std::vector<SettingInfo>& AllSettings() {
  static const auto* infos = [] {
    auto* v = new std::vector<SettingInfo>;
    for (const Setting& s : Settings()) v->push_back(s.info);
    return v;
  }();
  return *infos;
}

absl::Status SetConfigValue(Config& config, std::string_view key, std::string_view value) {
  const Setting* s = Find(key);
  if (s == nullptr) return absl::InvalidArgumentError(fmt::format("unknown setting: {}", key));
  return std::visit(
      [&](auto member) -> absl::Status {
        using T = std::remove_cvref_t<decltype(config.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          config.*member = std::string(value);
        } else if constexpr (std::is_same_v<T, absl::Duration>) {
          ASSIGN_OR_RETURN(config.*member, ParseDurationText(key, value));
        } else if constexpr (std::is_same_v<T, bool>) {
          if (value != "true" && value != "false") {
            return absl::InvalidArgumentError(
                fmt::format("setting {}: '{}' is not true or false", key, value));
          }
          config.*member = value == "true";
        } else {
          int64_t n;
          if (!absl::SimpleAtoi(std::string(value), &n) || n < std::numeric_limits<T>::min() ||
              n > std::numeric_limits<T>::max()) {
            return absl::InvalidArgumentError(
                fmt::format("setting {}: '{}' is not an integer", key, value));
          }
          config.*member = static_cast<T>(n);
        }
        return absl::OkStatus();
      },
      s->field);
}

std::string ConfigValueText(const Config& config, std::string_view key) {
  const Setting* s = Find(key);
  if (s == nullptr) return "";
  if (key == "notify.smtp_password") return config.notify_smtp_password.empty() ? "" : "(set)";
  return std::visit(
      [&](auto member) -> std::string {
        using T = std::remove_cvref_t<decltype(config.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return config.*member;
        } else if constexpr (std::is_same_v<T, absl::Duration>) {
          return absl::FormatDuration(config.*member);
        } else {
          return fmt::format("{}", config.*member);
        }
      },
      s->field);
}

absl::Status ValidateConfig(const Config& c) {
  auto range = [](std::string_view key, int64_t v, int64_t lo, int64_t hi) -> absl::Status {
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(
          fmt::format("setting {} = {} is out of range [{}, {}]", key, v, lo, hi));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(range("server.port", c.port, 0, 65535));
  RETURN_IF_ERROR(range("server.network_threads", c.network_threads, 1, 64));
  RETURN_IF_ERROR(range("server.worker_threads", c.worker_threads, 0, 256));
  RETURN_IF_ERROR(range("server.max_body_bytes", c.max_body_bytes, 1024, int64_t{1} << 30));
  RETURN_IF_ERROR(range("server.max_connections", c.max_connections, 1, 1'000'000));
  RETURN_IF_ERROR(range("server.max_pending_requests", c.max_pending_requests, 1, 1'000'000));
  RETURN_IF_ERROR(range("server.authn_rate_per_ip", c.authn_rate_per_ip, 0, 1'000'000));
  RETURN_IF_ERROR(range("server.authn_burst_per_ip", c.authn_burst_per_ip, 1, 1'000'000));
  RETURN_IF_ERROR(range("server.refused_auth_per_minute_per_ip", c.refused_auth_per_minute_per_ip,
                        0, 1'000'000));
  RETURN_IF_ERROR(
      range("server.refused_auth_burst_per_ip", c.refused_auth_burst_per_ip, 1, 1'000'000));
  RETURN_IF_ERROR(range("password.argon2_memory_kib", c.argon2_memory_kib, 8, 4 << 20));
  RETURN_IF_ERROR(range("password.argon2_iterations", c.argon2_iterations, 1, 100));
  RETURN_IF_ERROR(range("password.min_length", c.password_min_length, 8, 1024));
  RETURN_IF_ERROR(range("password.max_length", c.password_max_length, 64, 4096));
  RETURN_IF_ERROR(range("authn.lockout_threshold", c.lockout_threshold, 1, 100));
  RETURN_IF_ERROR(range("authn.totp_skew_steps", c.totp_skew_steps, 0, 2));
  RETURN_IF_ERROR(range("support.anomaly_max_tenants", c.anomaly_max_tenants, 0, 100'000));
  RETURN_IF_ERROR(
      range("support.anomaly_max_refused_actions", c.anomaly_max_refused_actions, 0, 100'000));
  if (c.grant_default_duration <= absl::ZeroDuration() ||
      c.grant_default_duration > c.grant_max_duration) {
    return absl::InvalidArgumentError(
        "support.grant_default_duration must be positive and at most support.grant_max_duration");
  }
  for (auto [key, d] : {std::pair{"support.enrollment_token_lifetime", c.enrollment_token_lifetime},
                        {"support.operator_token_lifetime", c.operator_token_lifetime},
                        {"support.dpop_max_age", c.dpop_max_age},
                        {"support.access_request_lifetime", c.access_request_lifetime},
                        {"support.confirmation_lifetime", c.confirmation_lifetime},
                        {"support.posture_max_age", c.posture_max_age},
                        {"support.anomaly_window", c.anomaly_window}}) {
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(fmt::format("setting {} must be positive", key));
    }
  }
  RETURN_IF_ERROR(range("system_log.batch_size", c.sequence_batch_size, 1, 1'000'000));
  RETURN_IF_ERROR(range("system_log.tile_cache", c.tile_cache, 0, 10'000'000));
  if (c.sequence_interval < absl::Milliseconds(10) || c.sequence_interval > absl::Seconds(60)) {
    return absl::InvalidArgumentError("system_log.sequence_interval must be between 10ms and 60s");
  }
  if (c.password_min_length > c.password_max_length) {
    return absl::InvalidArgumentError("password.min_length exceeds password.max_length");
  }
  if (c.store_synchronous != "full" && c.store_synchronous != "normal") {
    return absl::InvalidArgumentError("store.synchronous must be full or normal");
  }
  if (!c.store_url.empty() && !c.store_url.starts_with("postgres://") &&
      !c.store_url.starts_with("postgresql://")) {
    // The value may hold a password: it is not repeated in the message.
    return absl::InvalidArgumentError(
        "store.url must be empty (SQLite) or start with postgres:// or postgresql://");
  }
  RETURN_IF_ERROR(range("store.connections", c.store_connections, 2, 1000));
  if (c.console_admin_group.empty() || c.console_admin_group.size() > 255) {
    return absl::InvalidArgumentError("console.admin_group must be 1 to 255 bytes");
  }
  if (c.log_format != "json" && c.log_format != "text") {
    return absl::InvalidArgumentError("log.format must be json or text");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok = level_ok || c.log_level == l;
  if (!level_ok)
    return absl::InvalidArgumentError("log.level must be trace, debug, info, warn or error");
  for (auto [key, d] : {std::pair{"server.request_timeout", c.request_timeout},
                        {"server.idle_timeout", c.idle_timeout},
                        {"authn.session_idle_timeout", c.session_idle_timeout},
                        {"authn.session_lifetime", c.session_lifetime},
                        {"authn.state_token_lifetime", c.state_token_lifetime},
                        {"authn.recovery_token_lifetime", c.recovery_token_lifetime}}) {
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(fmt::format("setting {} must be positive", key));
    }
  }
  RETURN_IF_ERROR(range("notify.workers", c.notify_workers, 1, 64));
  RETURN_IF_ERROR(range("notify.max_attempts", c.notify_max_attempts, 1, 1000));
  if (c.notify_lease < absl::Seconds(1) || c.notify_lease > absl::Hours(1)) {
    return absl::InvalidArgumentError("notify.lease must be between 1s and 1h");
  }
  if (c.notify_poll_interval < absl::Milliseconds(10) ||
      c.notify_poll_interval > absl::Seconds(60)) {
    return absl::InvalidArgumentError("notify.poll_interval must be between 10ms and 60s");
  }
  if (c.notify_backoff_base <= absl::ZeroDuration() ||
      c.notify_backoff_cap < c.notify_backoff_base) {
    return absl::InvalidArgumentError(
        "notify.backoff_base must be positive and at most notify.backoff_cap");
  }
  if (!c.notify_smtp_url.empty() && !c.notify_smtp_url.starts_with("smtp://") &&
      !c.notify_smtp_url.starts_with("smtps://")) {
    return absl::InvalidArgumentError("notify.smtp_url must start with smtp:// or smtps://");
  }
  if (!c.notify_smtp_url.empty() && c.notify_mail_from.empty()) {
    return absl::InvalidArgumentError("notify.mail_from must be set when notify.smtp_url is");
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  Config config;
  if (!path.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {} at line {}", path, e.description(), e.source().begin.line));
    }
    for (auto&& [section, node] : table) {
      const toml::table* inner = node.as_table();
      if (inner == nullptr) {
        return absl::InvalidArgumentError(
            fmt::format("{}: '{}' must be a [section]", path, section.str()));
      }
      for (auto&& [key, value] : *inner) {
        std::string full = fmt::format("{}.{}", section.str(), key.str());
        std::string text;
        if (auto s = value.value<std::string>(); s && value.is_string()) {
          text = *s;
        } else if (auto i = value.value<int64_t>(); i && value.is_integer()) {
          text = absl::StrCat(*i);
        } else if (auto b = value.value<bool>(); b && value.is_boolean()) {
          text = *b ? "true" : "false";
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": ", full, " must be a string, an integer or a boolean"));
        }
        absl::Status st = SetConfigValue(config, full, text);
        if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
      }
    }
  }
  for (const Setting& s : Settings()) {
    std::string env = absl::AsciiStrToUpper(
        absl::StrReplaceAll(fmt::format("CUSTOS_{}", s.info.key), {{".", "_"}}));
    if (const char* v = std::getenv(env.c_str()); v != nullptr) {
      absl::Status st = SetConfigValue(config, s.info.key, v);
      if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(env, ": ", st.message()));
    }
  }
  return config;
}

}  // namespace custos
