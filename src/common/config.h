#pragma once

// Custos configuration. Every setting has a default, may be set in `custos.toml`
// (`[section] key = value`), and may be overridden by the environment variable
// `CUSTOS_<SECTION>_<KEY>` (upper case) and then by command-line flags.
// docs/configuration.md lists every setting; a test keeps it in step with kSettings.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace custos {

struct Config {
  // [server]
  std::string listen_address = "127.0.0.1";
  int port = 8080;  // 0 picks a free port; the chosen one is printed at start.
  int network_threads = 1;
  int worker_threads = 0;  // 0: one per core.
  int64_t max_body_bytes = 1 << 20;
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration shutdown_grace = absl::Seconds(20);
  std::string public_base_url;  // Empty: http://<listen_address>:<port>.
  int max_connections = 1024;
  int max_pending_requests = 256;
  int authn_rate_per_ip = 10;  // Sign-in requests per second per client address; 0: no limit.
  int authn_burst_per_ip = 20;
  int refused_auth_per_minute_per_ip =
      60;  // Refused API credentials logged per address; 0: no limit.
  int refused_auth_burst_per_ip = 20;

  // [store]
  std::string data_dir = "./data";
  std::string store_synchronous = "full";  // SQLite PRAGMA synchronous: full or normal.
  // Empty: the embedded SQLite store in data_dir. postgres://… or postgresql://…: a PostgreSQL
  // database (may hold a password: never logged).
  std::string store_url;
  int store_connections = 8;  // PostgreSQL connections per process.

  // [log]
  std::string log_level = "info";
  std::string log_format = "json";  // json or text.

  // [system_log] the verifiable System Log
  absl::Duration sequence_interval = absl::Milliseconds(500);
  int sequence_batch_size = 16384;
  bool provider_log_public = false;
  int tile_cache = 4096;

  // [password]
  int64_t argon2_memory_kib = 19456;  // OWASP minimum for Argon2id: m=19 MiB, t=2, p=1.
  int argon2_iterations = 2;
  int password_min_length = 8;
  int password_max_length = 256;

  // [authn]
  int lockout_threshold = 10;  // Consecutive failures before LOCKED_OUT; 1..100.
  absl::Duration session_idle_timeout = absl::Hours(2);
  absl::Duration session_lifetime = absl::Hours(24);
  absl::Duration state_token_lifetime = absl::Minutes(5);
  absl::Duration recovery_token_lifetime = absl::Hours(1);
  int totp_skew_steps = 1;

  // [support] the support access plane
  absl::Duration enrollment_token_lifetime = absl::Hours(24);
  absl::Duration operator_token_lifetime = absl::Minutes(15);
  absl::Duration dpop_max_age = absl::Seconds(60);  // DPoP proof iat window (and clock skew)
  absl::Duration access_request_lifetime = absl::Hours(12);
  absl::Duration grant_default_duration = absl::Hours(8);
  absl::Duration grant_max_duration = absl::Hours(24);
  absl::Duration confirmation_lifetime = absl::Hours(1);
  // Device policy defaults (the provider API may replace them).
  absl::Duration posture_max_age = absl::Hours(24);
  std::string required_posture = "disk_encrypted,screen_lock,edr_running";
  absl::Duration max_patch_age = absl::Hours(24 * 30);  // 0: patch date not checked
  // Anomaly rules.
  int anomaly_max_tenants = 5;  // distinct tenants per operator within the window; 0: off
  absl::Duration anomaly_window = absl::Minutes(60);
  int anomaly_max_refused_actions = 3;  // refused guarded actions within the window; 0: off
  bool anomaly_new_device_or_network = true;
  bool anomaly_suspend_operator = false;

  // [notify] delivery of incident notifications to tenants' security contacts
  bool notify_enabled = true;
  int notify_workers = 8;
  absl::Duration notify_lease = absl::Seconds(30);
  absl::Duration notify_poll_interval = absl::Seconds(1);
  absl::Duration notify_backoff_base = absl::Seconds(1);
  absl::Duration notify_backoff_cap = absl::Hours(1);
  int notify_max_attempts = 12;
  std::string notify_smtp_url;  // smtp:// or smtps://; empty: e-mail contacts cannot be served
  std::string notify_smtp_user;
  std::string notify_smtp_password;  // a secret: ConfigValueText shows "(set)", never the value
  std::string notify_mail_from;
  bool notify_allow_http_webhooks = false;  // http:// webhooks to loopback are always allowed

  // [console] the web console served at /console/
  // The built console (index.html and assets/). Empty: the directory compiled in by CMake,
  // <source dir>/web/dist (api/console/console_files.h ConsoleDir).
  std::string console_dir;
  // A tenant's console admins are the ACTIVE members of its group of this name (in the provider
  // tenant: the provider's security team).
  std::string console_admin_group = "Custos Administrators";
};

// One documented setting.
struct SettingInfo {
  std::string_view key;  // "server.port"
  std::string_view description;
};
const std::vector<SettingInfo>& AllSettings();

// Reads `path` (when non-empty; a missing file is an error) then the CUSTOS_* environment.
// Unknown keys, wrong types and out-of-range values are errors naming the key.
absl::StatusOr<Config> LoadConfig(const std::string& path);

// Applies `key=value` (as in the file, e.g. "server.port=0"); used by flags and tests.
absl::Status SetConfigValue(Config& config, std::string_view key, std::string_view value);

// Checks ranges and cross-field rules.
absl::Status ValidateConfig(const Config& config);

// Current value of a setting as text (durations as "30s"), for docs and `custos config`. A
// secret setting (notify.smtp_password) shows as "(set)" when it has a value.
std::string ConfigValueText(const Config& config, std::string_view key);

}  // namespace custos
