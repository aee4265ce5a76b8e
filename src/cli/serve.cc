#include "cli/serve.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "absl/synchronization/notification.h"
#include "api/common.h"
#include "api/console/console_files.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "audit/sequencer.h"
#include "authn/sign_in.h"
#include "cli/demo_data.h"
#include "cli/routes.h"
#include "cli/shared_state.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/rate_limiter.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "directory/directory.h"
#include "http/server.h"
#include "http/store_metrics.h"
#include "incident/mailer.h"
#include "incident/notifier.h"
#include "incident/webhook.h"

namespace custos::cli {
namespace {

// Expired support requests and grants get their events within about this long.
constexpr absl::Duration kSweepInterval = absl::Minutes(1);

// This binary's path, for commands printed to paste; "custos" when it cannot be read.
std::string SelfPath() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("custos") : self.string();
}

int Fail(std::string_view what, const absl::Status& status) {
  fmt::print(stderr, "custos serve: {}: {}\n", what, std::string(status.message()));
  return 1;
}

// The SMTP relay of [notify], or nullptr when none is configured. The password stays out of
// every message.
absl::StatusOr<std::unique_ptr<incident::MailSender>> MailSenderFor(const Config& config) {
  if (config.notify_smtp_url.empty()) return nullptr;
  if (absl::Status st = incident::ValidateSmtpUrl(config.notify_smtp_url); !st.ok()) {
    return absl::InvalidArgumentError("notify.smtp_url: " + std::string(st.message()));
  }
  if (!incident::IsMailAddress(config.notify_mail_from)) {
    return absl::InvalidArgumentError("notify.mail_from is not a mail address");
  }
  return std::make_unique<incident::CurlMailSender>(
      incident::SmtpOptions{.url = config.notify_smtp_url,
                            .user = config.notify_smtp_user,
                            .password = config.notify_smtp_password});
}

}  // namespace

int Serve(const ConfigFlags& flags, const ServeFlags& serve) {
  absl::StatusOr<Config> config = ResolveConfig(flags);
  if (!config.ok()) return Fail("configuration", config.status());
  if (absl::Status st = InitLogging(config->log_level, config->log_format); !st.ok()) {
    return Fail("logging", st);
  }
  auto runtime = OpenRuntime(*config);
  if (!runtime.ok()) return Fail("data directory", runtime.status());
  Runtime& rt = **runtime;
  // One server per data directory: the sequencer's signed heads (log-heads) are one node's
  // record of what it signed. (Nodes sharing a PostgreSQL store each have their own data
  // directory; a store lease picks the one that sequences.) Held until
  // the process exits (the kernel drops it even after kill -9). `custos admin` does not take
  // it: its writes go through the store like a request's.
  const std::string lock_path = rt.config.data_dir + "/serve.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return Fail("data directory", absl::FailedPreconditionError(fmt::format(
                                      "another custos serve uses {} (lock {}: {})",
                                      rt.config.data_dir, lock_path, std::strerror(errno))));
  }

  Metrics metrics;
  http::StoreMetrics store_metrics(metrics);
  rt.store->SetObserver(&store_metrics);

  crypto::PasswordHasher hasher(
      crypto::Argon2Params{rt.config.argon2_memory_kib, rt.config.argon2_iterations});
  // Rate limits and DPoP replay caches are in memory with the embedded store, in the store with
  // PostgreSQL, where every process on the database shares them (cli/shared_state.h).
  std::unique_ptr<RateLimit> refused_auth =
      MakeRateLimit(rt.config, *rt.store, SystemClock::Get(), kRefusedAuthLimitScope,
                    {.rate_per_second = rt.config.refused_auth_per_minute_per_ip,
                     .burst = rt.config.refused_auth_burst_per_ip,
                     .per = absl::Minutes(1)});
  api::Services services{*rt.store, rt.config,  SystemClock::Get(), crypto::SystemRandom(),
                         hasher,    *rt.sealer, refused_auth.get()};
  directory::Directory directory(services.store, services.config, services.clock, services.random,
                                 hasher, *rt.sealer);
  authn::SignIn sign_in(services.store, services.config, services.clock, services.random, hasher,
                        *rt.sealer);
  // Console admins' sessions are accepted on the admin routes (api/common.h).
  services.sign_in = &sign_in;

  audit::LogKeys log_keys(services.store, *rt.sealer, services.clock, services.random);
  audit::LogReader log_reader(services.store, static_cast<size_t>(rt.config.tile_cache));
  SupportStack support(services);
  OidcStack oidc(services, directory);
  std::vector<api::Route> routes =
      ApiRoutes(services, directory, sign_in, log_reader, log_keys, support, oidc);

  http::ServerOptions server_options = http::ServerOptionsFromConfig(rt.config);
  // The console's headers also on what the router answers under /console (a malformed path, a
  // method the console has no route for), which its handlers never see.
  server_options.path_headers.push_back({"/console", api::console::ConsoleHeaders()});
  std::unique_ptr<RateLimit> sign_in_limit;
  if (SharesStateThroughStore(rt.config)) {
    sign_in_limit = MakeRateLimit(rt.config, *rt.store, SystemClock::Get(), kSignInLimitScope,
                                  {.rate_per_second = server_options.rate_limit_per_second,
                                   .burst = server_options.rate_limit_burst});
    server_options.rate_limiter = sign_in_limit.get();
  }
  http::Server server(server_options, std::move(routes), metrics);
  server.SetReadinessCheck([&rt] { return rt.store->Ping(); });
  if (absl::Status st = server.Start(); !st.ok()) return Fail("listen", st);

  // The log origins and the key name come from the public base URL, known once listening.
  const std::string log_host = api::LogHost(server.base_url());
  if (rt.config.public_base_url.empty()) {
    Log(LogLevel::kWarn,
        "server.public_base_url is not set: new logs and a new signing key take their names "
        "from the listen address; set it before customers verify logs",
        {{"log_host", log_host}});
  }
  if (rt.config.store_synchronous != "full") {
    Log(LogLevel::kWarn,
        "store.synchronous is not full: after a power loss the log may lose entries that a "
        "published checkpoint covers");
  }
  if (absl::Status st = log_keys.EnsureKey(log_host); !st.ok()) {
    return Fail("checkpoint signing key", st);
  }
  audit::Sequencer sequencer(
      services.store, log_keys, services.clock,
      audit::SequencerOptions{.host = log_host,
                              .batch_size = rt.config.sequence_batch_size,
                              .interval = rt.config.sequence_interval,
                              .signed_heads_path = rt.config.data_dir + "/log-heads",
                              .metrics = &metrics});
  // Takes the sequencer's lease when no other node holds it; a node that does not lead only
  // checks the store against its signed heads here, and takes over later in the background.
  if (absl::Status st = sequencer.Recover(); !st.ok()) {
    // Serving goes on (events stay durable in the outbox); nothing is signed until an operator
    // has looked at the store.
    Log(LogLevel::kError, "the verifiable log cannot continue",
        {{"error", std::string(st.message())}});
  }
  sequencer.Start();

  // Incident notifications: the outbox worker delivers beside the server; it stops before the
  // store closes. Rows wait in the store while it is off.
  absl::StatusOr<std::unique_ptr<incident::MailSender>> mail_sender = MailSenderFor(rt.config);
  if (!mail_sender.ok()) return Fail("configuration", mail_sender.status());
  incident::CurlWebhookSender webhook_sender;
  incident::Notifier notifier(
      services.store, *rt.sealer, services.clock, services.random, webhook_sender,
      mail_sender->get(),
      incident::NotifierOptions{.workers = rt.config.notify_workers,
                                .lease = rt.config.notify_lease,
                                .poll_interval = rt.config.notify_poll_interval,
                                .backoff_base = rt.config.notify_backoff_base,
                                .backoff_cap = rt.config.notify_backoff_cap,
                                .max_attempts = rt.config.notify_max_attempts,
                                .mail_from = rt.config.notify_mail_from,
                                .base_url = server.base_url()});
  if (rt.config.notify_enabled) notifier.Start();

  const bool console_built = api::console::ConsoleBuilt(api::console::ConsoleDir(rt.config));
  if (!console_built) {
    Log(LogLevel::kWarn, "the web console is not built: /console/ answers 503 until `make web`",
        {{"console_dir", api::console::ConsoleDir(rt.config)}});
  }
  if (serve.demo) {
    absl::StatusOr<DemoData> demo = SeedDemoData(services, directory);
    if (!demo.ok()) return Fail("demo data", demo.status());
    std::string org = fmt::format("{}/t/{}", server.base_url(), demo->tenant);
    fmt::print(
        "\nCustos demo tenant '{}' is ready.\n"
        "  Users (management API):  curl -H 'Authorization: SSWS {}' {}/api/v1/users\n"
        "  System Log:              curl -H 'Authorization: SSWS {}' {}/api/v1/logs\n"
        "  Sign in:                 curl -H 'Content-Type: application/json' -d "
        "'{{\"username\":\"{}\",\"password\":\"{}\"}}' {}/api/v1/authn\n"
        "  Verify its log:          {} log verify {}/log --token {}\n"
        "  Support plane (vendors): curl -H 'Authorization: SSWS {}' {}/provider/api/v1/vendors\n"
        "                           (a support case step by step: docs/support.md)\n"
        "  Health and metrics:      {}/healthz  {}/metrics\n\n",
        demo->tenant, demo->api_token, org, demo->api_token, org, demo->login, demo->password, org,
        SelfPath(), org, demo->api_token, demo->provider_token, server.base_url(),
        server.base_url(), server.base_url());
    // Demo credentials only: these users exist for the demo, and printing them is the point.
    fmt::print("Web console: {}/console/{}\n", server.base_url(),
               console_built ? "" : "  (not built yet: run `make web`, then reload)");
    for (const DemoConsoleAdmin& admin : demo->console_admins) {
      fmt::print(
          "  {:<24} organisation {}, username {}, password {}\n"
          "  {:<24} TOTP secret {} ({})\n",
          admin.tenant == "provider" ? "Security team:" : "Tenant admin:", admin.tenant,
          admin.login, admin.password, "", admin.totp_secret, admin.totp_uri);
    }
    for (const std::string& skipped : demo->skipped_console_admins) {
      fmt::print("  {:<24} {}\n", "Skipped:", skipped);
    }
    if (!demo->skipped_console_admins.empty()) {
      fmt::print(
          "  (no demo user is made or promoted in data the demo did not make; give the demo a new "
          "--data-dir, or sign in as an admin of your own)\n");
    }
    fmt::print(
        "  (a code: oathtool --totp -b <secret>, or scan the otpauth URI; docs/console.md)\n\n");
  } else {
    fmt::print("custos console on {}/console/{}\n", server.base_url(),
               console_built ? "" : " (not built: run `make web`)");
  }
  fmt::print("custos listening on {}\n", server.base_url());
  std::fflush(stdout);
  Log(LogLevel::kInfo, "serving", {{"url", server.base_url()}, {"data_dir", rt.config.data_dir}});

  // Housekeeping beside the server: expired sessions and sign-in transactions are deleted
  // every few minutes. Stopped before the store closes.
  absl::Notification stopping;
  std::thread sweeper([&] {
    while (!stopping.WaitForNotificationWithTimeout(kSweepInterval)) {
      absl::StatusOr<int> swept = sign_in.SweepExpired();
      if (!swept.ok()) {
        Log(LogLevel::kWarn, "sweep of expired sessions failed",
            {{"error", std::string(swept.status().message())}});
      } else if (*swept > 0) {
        Log(LogLevel::kInfo, "swept expired sessions", {{"rows", *swept}});
      }
      absl::StatusOr<int> ended = support.plane.SweepExpired();
      if (!ended.ok()) {
        Log(LogLevel::kWarn, "sweep of expired support requests and grants failed",
            {{"error", std::string(ended.status().message())}});
      } else if (*ended > 0) {
        Log(LogLevel::kInfo, "expired support requests and grants", {{"rows", *ended}});
      }
    }
  });

  server.RunUntilSignal();
  // First, so that another node takes over the sequencer's lease at once; what is written
  // from here on waits in the outbox for it (or for this node's next start).
  sequencer.Stop();
  stopping.Notify();
  sweeper.join();
  notifier.Stop();
  rt.store->SetObserver(nullptr);
  rt.store->Close();
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace custos::cli
