#include "cli/demo_command.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "api/common.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "audit/note.h"
#include "audit/sequencer.h"
#include "cli/demo_data.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "directory/directory.h"
#include "http/server.h"
#include "incident/contacts.h"
#include "incident/evidence.h"
#include "incident/incidents.h"
#include "incident/notifier.h"
#include "incident/replay.h"
#include "incident/webhook.h"
#include "store/sqlite/sqlite_store.h"
#include "support/plane.h"

namespace custos::cli {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

constexpr absl::Duration kDeliveryTimeout = absl::Minutes(3);

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Elapsed(Steady::duration d) {
  const double s = Seconds(d);
  if (s < 0.01) return fmt::format("{:.1f} ms", s * 1000);
  return s < 1 ? fmt::format("{:.0f} ms", s * 1000) : fmt::format("{:.1f} s", s);
}

std::string TimeOfDay(absl::Time t) { return absl::FormatTime("%H:%M:%S", t, absl::UTCTimeZone()); }
std::string Day(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }

// The base URL `custos serve` will have with this configuration (http::Server's rule).
std::string BaseUrl(const Config& config) {
  std::string url = config.public_base_url;
  if (url.empty()) {
    url = config.listen_address.find(':') != std::string::npos
              ? fmt::format("http://[{}]:{}", config.listen_address, config.port)
              : fmt::format("http://{}:{}", config.listen_address, config.port);
  }
  while (url.ends_with('/')) url.pop_back();
  return url;
}

// ---- The data directory ----

// Holds DIR/serve.lock like `custos serve` does, so that neither runs on the other's data.
class DirLock {
 public:
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  absl::Status Take(const std::string& dir) {
    const std::string path = dir + "/serve.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      return absl::FailedPreconditionError(
          fmt::format("a custos serve uses {} (lock {}: {})", dir, path, std::strerror(errno)));
    }
    return absl::OkStatus();
  }

 private:
  int fd_ = -1;
};

// Makes `dir` ready: created 0700 when missing; refused when it holds anything, unless it is an
// earlier demo's and `force` (then emptied).
absl::Status PrepareDir(const std::string& dir, bool force) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec)
      return absl::FailedPreconditionError(fmt::format("cannot create {}: {}", dir, ec.message()));
    ::chmod(dir.c_str(), 0700);
    return absl::OkStatus();
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(fmt::format("{} is not a directory", dir));
  }
  if (fs::is_empty(dir, ec)) return absl::OkStatus();
  if (!fs::exists(fs::path(dir) / kDemoMarkerFile, ec)) {
    return absl::FailedPreconditionError(fmt::format(
        "{} is not empty and not a custos demo directory: give a new or empty one", dir));
  }
  if (!force) {
    return absl::FailedPreconditionError(fmt::format(
        "{} holds an earlier demo: add --force to replace it, or serve it with `custos serve "
        "--data-dir {}`",
        dir, dir));
  }
  {
    DirLock lock;
    RETURN_IF_ERROR(lock.Take(dir));
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    fs::remove_all(entry.path(), ec);
    if (ec)
      return absl::InternalError(
          fmt::format("cannot remove {}: {}", entry.path().string(), ec.message()));
  }
  return absl::OkStatus();
}

// Readable by the owner only, like everything else in a data directory.
absl::Status WriteFile(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return absl::InternalError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  if (written != bytes.size()) return absl::InternalError(fmt::format("cannot write {}", path));
  return absl::OkStatus();
}

// ---- The webhook sink ----

// A tenant's security team, as far as the demo needs one: an HTTP endpoint on 127.0.0.1 that
// checks each delivery's Standard Webhooks signature with the tenant's secret and counts it.
// Thread-safe.
class WebhookSink {
 public:
  WebhookSink() {
    http::ServerOptions options;
    options.listen_address = "127.0.0.1";
    options.port = 0;
    options.worker_threads = 4;
    options.shutdown_grace = absl::Seconds(2);
    std::vector<api::Route> routes;
    routes.push_back({"POST", "/hooks/{tenant}", [this](api::Request& r) { return Take(r); }});
    server_ = std::make_unique<http::Server>(options, std::move(routes), metrics_);
  }
  ~WebhookSink() { Stop(); }

  absl::Status Start() {
    RETURN_IF_ERROR(server_->Start());
    thread_ = std::thread([this] { server_->Run(); });
    return absl::OkStatus();
  }
  void Stop() {
    if (!thread_.joinable()) return;
    server_->Shutdown();
    thread_.join();
  }
  std::string UrlFor(std::string_view tenant_name) const {
    return fmt::format("{}/hooks/{}", server_->base_url(), tenant_name);
  }
  void AddSecret(const std::string& tenant_name, const std::string& secret) {
    absl::MutexLock lock(&mu_);
    secrets_[tenant_name] = secret;
  }

  struct Counts {
    int deliveries = 0;  // requests received
    int verified = 0;    // with a valid signature, for the tenant they were addressed to
    int rejected = 0;
    int tenants = 0;     // tenants with at least one verified delivery
    int duplicates = 0;  // verified deliveries of a webhook-id seen before
  };
  Counts counts() const {
    absl::MutexLock lock(&mu_);
    Counts c = counts_;
    c.tenants = static_cast<int>(tenants_.size());
    return c;
  }

 private:
  api::Response Take(api::Request& r) {
    const std::string tenant = r.Param("tenant");
    const std::string id = r.Header("webhook-id");
    int64_t timestamp = 0;
    const bool has_timestamp = absl::SimpleAtoi(r.Header("webhook-timestamp"), &timestamp);
    absl::MutexLock lock(&mu_);
    ++counts_.deliveries;
    auto secret = secrets_.find(tenant);
    bool ok = secret != secrets_.end() && has_timestamp && !id.empty() &&
              incident::VerifyWebhook(secret->second, id, timestamp, r.body,
                                      r.Header("webhook-signature"));
    if (ok) {
      // The payload must be about the tenant it was sent to.
      const Json body = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      ok = body.is_object() && body.contains("data") && body["data"].is_object() &&
           body["data"].value("tenant", Json::object()).value("name", "") == tenant;
    }
    if (!ok) {
      ++counts_.rejected;
      return api::Response::MakeJson(400, {{"error", "signature or payload not valid"}});
    }
    ++counts_.verified;
    if (!ids_.insert(id).second) ++counts_.duplicates;
    tenants_.insert(tenant);
    return api::Response::NoContent();
  }

  Metrics metrics_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> secrets_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> ids_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> tenants_ ABSL_GUARDED_BY(mu_);
  Counts counts_ ABSL_GUARDED_BY(mu_);
};

// ---- The run ----

struct Timings {
  Steady::duration replay{}, sequencing{}, declare{}, scope{}, evidence{}, notify{};
};

class Demo {
 public:
  Demo(const DemoFlags& flags, std::FILE* out, std::FILE* err)
      : flags_(flags), out_(out), err_(err) {}

  int Run() {
    absl::Status st = RunSteps();
    if (!st.ok()) {
      fmt::print(err_, "custos demo: {}\n", std::string(st.message()));
      return 1;
    }
    return 0;
  }

 private:
  absl::Status RunSteps();
  absl::Status Replay();
  absl::Status Respond();
  std::string Summary();
  absl::Status WriteMarker(const Json& extra);
  void Progress(const incident::ReplayProgress& p);

  const DemoFlags& flags_;
  std::FILE* out_;
  std::FILE* err_;

  Config config_;
  std::string dir_;
  bool temporary_ = false;
  std::string base_url_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<audit::LogKeys> keys_;
  std::unique_ptr<audit::Sequencer> sequencer_;
  WebhookSink sink_;

  incident::ReplayPlan plan_;
  incident::ReplayResult replayed_;
  std::map<std::string, int> tenant_index_;  // tenant id -> plan index
  uint64_t events_ = 0;
  Steady::time_point last_progress_{};

  store::IncidentRecord incident_;
  incident::ScopeResult scope_;
  std::vector<std::string> evidence_paths_;
  std::string report_path_;
  incident::NotifyResult notified_;
  int delivered_ = 0;
  std::vector<std::string> alerts_;  // anomaly alerts in the compromise window
  std::string provider_token_;       // the demo's provider admin token (cli/demo_data.h)
  Timings timings_;
};

absl::Status Demo::RunSteps() {
  ASSIGN_OR_RETURN(config_, ResolveConfig(flags_.config));
  // Only warnings: the sink's access log would drown the progress.
  RETURN_IF_ERROR(InitLogging("warn", "text"));
  if (flags_.config.data_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "custos-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError("cannot make a temporary directory");
    }
    dir_ = pattern;
    temporary_ = true;
  } else {
    dir_ = flags_.config.data_dir;
    RETURN_IF_ERROR(PrepareDir(dir_, flags_.force));
  }
  config_.data_dir = dir_;
  base_url_ = BaseUrl(config_);

  DirLock lock;
  RETURN_IF_ERROR(lock.Take(dir_));
  RETURN_IF_ERROR(WriteMarker({{"status", "running"}}));
  ASSIGN_OR_RETURN(sealer_, crypto::Sealer::OpenOrCreate(dir_ + "/seal.key"));
  ASSIGN_OR_RETURN(
      store_, store::OpenSqliteStore({.path = dir_ + "/custos.db", .synchronous_full = false}));
  absl::Status st = Replay();
  if (st.ok()) st = Respond();
  if (sequencer_) sequencer_->Stop();
  sink_.Stop();
  store_->Close();
  if (!st.ok()) return st;
  RETURN_IF_ERROR(WriteMarker({{"status", "done"},
                               {"incidentId", incident_.id},
                               {"report", report_path_},
                               {"evidence", evidence_paths_}}));
  const std::string summary = Summary();
  fmt::print(out_, "{}", summary);
  std::fflush(out_);
  if (!temporary_ || flags_.keep) RETURN_IF_ERROR(WriteFile(dir_ + "/demo-summary.txt", summary));
  if (temporary_ && !flags_.keep) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  return absl::OkStatus();
}

absl::Status Demo::WriteMarker(const Json& extra) {
  Json marker = {{"format", "custos-demo/v1"},    {"tenants", flags_.tenants},
                 {"engineers", flags_.engineers}, {"days", flags_.days},
                 {"seed", flags_.seed},           {"baseUrl", base_url_}};
  marker.update(extra);
  return WriteFile(dir_ + "/" + std::string(kDemoMarkerFile), marker.dump(2) + "\n");
}

void Demo::Progress(const incident::ReplayProgress& p) {
  const Steady::time_point now = Steady::now();
  const bool done = p.steps > 0 && p.steps_done == p.steps;
  if (!done && now - last_progress_ < std::chrono::seconds(2)) return;
  last_progress_ = now;
  const uint64_t logged = sequencer_ ? sequencer_->stats().events : 0;
  if (p.day == 0) {
    fmt::print(err_, "  setting up: {}/{} tenants, {} operators on their devices ({:.0f} s)\n",
               p.tenants_created, plan_.tenants.size(), plan_.operators.size(),
               absl::ToDoubleSeconds(p.elapsed));
  } else {
    fmt::print(err_,
               "  day {}/{}: {}/{} steps, {} tenants reached, {} events in the logs ({:.0f} s)\n",
               p.day, p.days, p.steps_done, p.steps, p.tenants_reached, logged,
               absl::ToDoubleSeconds(p.elapsed));
  }
  std::fflush(err_);
}

absl::Status Demo::Replay() {
  ASSIGN_OR_RETURN(plan_, incident::MakeReplayPlan({.tenants = flags_.tenants,
                                                    .engineers = flags_.engineers,
                                                    .days = flags_.days,
                                                    .seed = flags_.seed,
                                                    .base_url = base_url_}));
  fmt::print(err_,
             "custos demo: replaying {} days of support work for {} tenants by {} engineers of {} "
             "(and {} in-house) into {}\n",
             flags_.days, flags_.tenants, flags_.engineers, plan_.vendor_name,
             plan_.operators.size() - static_cast<size_t>(flags_.engineers), dir_);
  RETURN_IF_ERROR(sink_.Start());

  crypto::Random& random = crypto::SystemRandom();
  FakeClock clock(plan_.options.start);
  RETURN_IF_ERROR(support::EnsureProviderTenant(*store_, clock, random));
  // The verifiable logs are sequenced while the replay writes, on the other core.
  keys_ = std::make_unique<audit::LogKeys>(*store_, *sealer_, SystemClock::Get(), random);
  const std::string log_host = api::LogHost(base_url_);
  RETURN_IF_ERROR(keys_->EnsureKey(log_host));
  sequencer_ = std::make_unique<audit::Sequencer>(
      *store_, *keys_, SystemClock::Get(),
      audit::SequencerOptions{.host = log_host,
                              .interval = absl::Milliseconds(100),
                              .signed_heads_path = dir_ + "/log-heads"});
  RETURN_IF_ERROR(sequencer_->Recover());
  sequencer_->Start();

  // Light Argon2id for the thousands of users the replay makes: their passwords are random
  // and never shown, so a hash's cost protects nothing here, and a real sign-in rehashes with
  // the configured settings.
  crypto::PasswordHasher hasher(crypto::Argon2Params{.memory_kib = 64, .iterations = 1});
  incident::SecurityContacts contacts(*store_, *sealer_, clock, random, incident::ContactOptions{});
  incident::Replay replay(*store_, config_, clock, random, hasher, *sealer_, plan_);
  const Steady::time_point started = Steady::now();
  ASSIGN_OR_RETURN(replayed_,
                   replay.Run(
                       [&](const store::TenantRecord& tenant,
                           const audit::RequestContext& admin) -> absl::Status {
                         ASSIGN_OR_RETURN(
                             incident::CreatedContact created,
                             contacts.Create(tenant.id, admin,
                                             {.type = std::string(store::kContactWebhook),
                                              .name = "Security team webhook",
                                              .address = sink_.UrlFor(tenant.name)}));
                         if (!created.secret.has_value())
                           return absl::InternalError("no webhook secret");
                         sink_.AddSecret(tenant.name, *created.secret);
                         return absl::OkStatus();
                       },
                       [&](const incident::ReplayProgress& p) { Progress(p); }));
  timings_.replay = Steady::now() - started;
  for (size_t i = 0; i < replayed_.tenant_ids.size(); ++i) {
    tenant_index_[replayed_.tenant_ids[i]] = static_cast<int>(i);
  }

  // Every event into its log, under a signed checkpoint.
  const Steady::time_point sequencing = Steady::now();
  RETURN_IF_ERROR(sequencer_->Drain());
  timings_.sequencing = Steady::now() - sequencing;
  events_ = sequencer_->stats().events;
  fmt::print(err_, "  replayed in {}; {} events sequenced and signed\n", Elapsed(timings_.replay),
             events_);
  return absl::OkStatus();
}

absl::Status Demo::Respond() {
  crypto::Random& random = crypto::SystemRandom();
  const Clock& clock = SystemClock::Get();
  audit::LogReader reader(*store_);
  incident::Incidents incidents(
      *store_, clock, random, reader, *keys_,
      incident::IncidentsOptions{.evidence_timeout = absl::Seconds(60),
                                 .evidence_poll_interval = absl::Milliseconds(10)});
  audit::RequestContext ctx = replayed_.security_team;
  ctx.user_agent = "custos-demo";
  const incident::PlannedOperator& engineer =
      plan_.operators[static_cast<size_t>(plan_.compromised)];

  // Declare, with what a responder knows: the contractor, the workstation, the attacker's
  // network, the five days, the 25 minutes.
  ctx.request_id = random.Id("req");
  Json definition = {
      {"title", fmt::format("Support workstation {} of {} taken over", engineer.device_name,
                            plan_.vendor_name)},
      {"indicators", replayed_.indicators.ToJson()},
      {"window",
       {{"start", FormatRfc3339(replayed_.window.start)},
        {"end", FormatRfc3339(replayed_.window.end)}}},
      {"compromiseWindow",
       {{"start", FormatRfc3339(replayed_.compromise.start)},
        {"end", FormatRfc3339(replayed_.compromise.end)}}},
      {"notes", fmt::format("Replay of January 2022 (custos demo, seed {}). Reported by the "
                            "contractor SOC: the workstation was reached from {}.",
                            flags_.seed, plan_.attacker_ip)}};
  Steady::time_point t = Steady::now();
  ASSIGN_OR_RETURN(incident_, incidents.Declare(ctx, definition));
  timings_.declare = Steady::now() - t;

  ctx.request_id = random.Id("req");
  t = Steady::now();
  ASSIGN_OR_RETURN(scope_, incidents.Scope(ctx, incident_.id));
  timings_.scope = Steady::now() - t;

  // Evidence for each confirmed tenant, each checked as its customer would.
  std::vector<audit::note::VerifierKey> trusted;
  ASSIGN_OR_RETURN(std::vector<std::string> vkeys, keys_->VerifierKeys());
  for (const std::string& vkey : vkeys) {
    ASSIGN_OR_RETURN(audit::note::VerifierKey key, audit::note::ParseVerifierKey(vkey));
    trusted.push_back(std::move(key));
  }
  const std::string evidence_dir = dir_ + "/evidence";
  std::error_code ec;
  fs::create_directories(evidence_dir, ec);
  if (ec)
    return absl::InternalError(fmt::format("cannot create {}: {}", evidence_dir, ec.message()));
  t = Steady::now();
  for (const incident::TenantScope& tenant : scope_.tenants) {
    if (!tenant.confirmed) continue;
    ctx.request_id = random.Id("req");
    ASSIGN_OR_RETURN(incident::EvidenceFile file,
                     incidents.Evidence(ctx, incident_.id, tenant.tenant_name));
    ASSIGN_OR_RETURN(Json package, incident::ParseEvidenceFile(file.bytes));
    RETURN_IF_ERROR(incident::VerifyEvidence(package, trusted, nullptr));
    const std::string path = evidence_dir + "/" + file.file_name;
    RETURN_IF_ERROR(WriteFile(path, file.bytes));
    evidence_paths_.push_back(path);
  }
  timings_.evidence = Steady::now() - t;

  // Notify the potential scope; the notifier delivers to the sink.
  incident::CurlWebhookSender sender;
  incident::Notifier notifier(
      *store_, *sealer_, clock, random, sender, nullptr,
      incident::NotifierOptions{.workers = 8, .poll_interval = absl::Milliseconds(50)});
  t = Steady::now();
  ctx.request_id = random.Id("req");
  ASSIGN_OR_RETURN(notified_, incidents.Notify(ctx, incident_.id, incident::Audience::kPotential));
  notifier.Start();
  notifier.Wake();
  const int expected = notified_.created + notified_.existing;
  const Steady::time_point deadline = Steady::now() + absl::ToChronoSeconds(kDeliveryTimeout);
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<incident::TenantNotifications> rows,
                     incidents.Notifications(incident_.id));
    int delivered = 0, failed = 0;
    for (const incident::TenantNotifications& tenant : rows) {
      for (const store::NotificationRecord& row : tenant.rows) {
        delivered += row.status == store::kNotificationDelivered;
        failed += row.status == store::kNotificationFailed;
      }
    }
    delivered_ = delivered;
    if (delivered + failed >= expected) break;
    if (Steady::now() > deadline) {
      notifier.Stop();
      return absl::DeadlineExceededError(fmt::format("{} of {} notifications delivered after {}",
                                                     delivered, expected,
                                                     absl::FormatDuration(kDeliveryTimeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  timings_.notify = Steady::now() - t;
  notifier.Stop();

  ASSIGN_OR_RETURN(std::string report,
                   incidents.Report(incident_.id, incident::ReportFormat::kMarkdown));
  report_path_ = fmt::format("{}/incident-{}.md", dir_, incident_.id);
  RETURN_IF_ERROR(WriteFile(report_path_, report));

  // What the access gate flagged while it happened (provider log).
  ASSIGN_OR_RETURN(std::vector<store::EventRecord> events,
                   store::ReadResult(*store_, [&](store::Transaction& tx) {
                     return tx.Events().Query(TenantId(std::string(store::kProviderLogId)),
                                              store::EventQuery{.since = scope_.compromise.start,
                                                                .until = scope_.compromise.end,
                                                                .limit = 100000});
                   }));
  for (const store::EventRecord& e : events) {
    if (e.event_type != "support.anomaly.alert") continue;
    const Json event = Json::parse(e.json, nullptr, /*allow_exceptions=*/false);
    const Json debug = event.is_object()
                           ? event.value("/debugContext/debugData"_json_pointer, Json::object())
                           : Json::object();
    alerts_.push_back(fmt::format("{}  {}: {}", TimeOfDay(e.published), debug.value("rule", "?"),
                                  debug.value("detail", "")));
  }

  // The demo tenant and tokens of `custos serve --demo`, so that serving this directory
  // shows the same as `make run` always did.
  crypto::PasswordHasher hasher(
      crypto::Argon2Params{config_.argon2_memory_kib, config_.argon2_iterations});
  api::Services services{*store_, config_, clock, random, hasher, *sealer_};
  directory::Directory directory(*store_, config_, clock, random, hasher, *sealer_);
  ASSIGN_OR_RETURN(DemoData demo, SeedDemoData(services, directory));
  provider_token_ = demo.provider_token;
  return absl::OkStatus();
}

// "13 fields; masked: login, email, lastName" for a view's list of fields shown.
std::string FieldsShown(std::string_view fields) {
  if (fields.empty()) return "nothing";
  int count = 0;
  std::vector<std::string> masked;
  for (std::string_view rest = fields; !rest.empty();) {
    const size_t comma = rest.find(',');
    std::string_view field = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    ++count;
    if (field.ends_with(" (masked)")) {
      field.remove_suffix(9);
      if (field.starts_with("profile.")) field.remove_prefix(8);
      masked.emplace_back(field);
    }
  }
  std::string out = fmt::format("{} field{}", count, count == 1 ? "" : "s");
  if (!masked.empty()) out += fmt::format("; masked: {}", fmt::join(masked, ", "));
  return out;
}

std::string Demo::Summary() {
  std::string text;
  auto o = std::back_inserter(text);
  const incident::PlannedOperator& engineer =
      plan_.operators[static_cast<size_t>(plan_.compromised)];
  const std::vector<int> planned_potential =
      plan_.TenantsReached(plan_.window, [&](const incident::PlannedStep& s) {
        return plan_.operators[static_cast<size_t>(s.op)].contractor;
      });
  auto company = [&](const incident::TenantScope& t) {
    auto it = tenant_index_.find(t.tenant_id.value());
    return it == tenant_index_.end() ? std::string()
                                     : plan_.tenants[static_cast<size_t>(it->second)].company;
  };

  fmt::format_to(o, "\nIncident {}: {}\n", incident_.id, incident_.title);
  fmt::format_to(o, "  indicators: vendor {} ({}), device {} ({}), network {}\n", plan_.vendor_name,
                 replayed_.vendor_id, engineer.device_name, replayed_.compromised_device_id,
                 plan_.attacker_range);
  fmt::format_to(o,
                 "\nPotential scope: {} of {} tenants, every tenant an engineer of {} reached "
                 "from {} to {}\n",
                 scope_.potential, plan_.tenants.size(), plan_.vendor_name,
                 Day(scope_.window.start), Day(scope_.window.end - absl::Seconds(1)));
  fmt::format_to(
      o, "  (the replay's plan says {}: {})\n", planned_potential.size(),
      static_cast<int>(planned_potential.size()) == scope_.potential ? "exact" : "MISMATCH");
  fmt::format_to(o,
                 "\nConfirmed scope: {} tenants, reached from {} or {} on {} between {} and {} "
                 "UTC\n",
                 scope_.confirmed, engineer.device_name, plan_.attacker_range,
                 Day(scope_.compromise.start), TimeOfDay(scope_.compromise.start),
                 TimeOfDay(scope_.compromise.end));
  for (const incident::TenantScope& t : scope_.tenants) {
    if (!t.confirmed) continue;
    int views = 0, attempts = 0, refusals = 0;
    for (const incident::TimelineEntry& e : t.timeline) {
      if (!e.confirmed) continue;
      views += e.event_type == "support.view" && e.outcome == "SUCCESS";
      attempts += e.event_type.starts_with("support.action.") ||
                  (e.event_type == "support.gate.deny" && e.reason == "scope_missing");
      refusals += e.outcome == "DENY" || e.outcome == "FAILURE";
    }
    fmt::format_to(o, "\n  {} ({}): {} views, {} reset attempts, {} refused\n", t.tenant_name,
                   company(t), views, attempts, refusals);
    for (const incident::TimelineEntry& e : t.timeline) {
      if (!e.confirmed) continue;
      std::string what = e.resource;
      if (e.event_type == "support.view") what += "  [" + FieldsShown(e.fields) + "]";
      if (e.outcome != "SUCCESS")
        what += fmt::format("{}{} {}", what.empty() ? "" : "  ", e.outcome, e.reason);
      fmt::format_to(o, "    {}  {:<30}  {}\n", TimeOfDay(e.time), e.event_type, what);
    }
  }
  if (!alerts_.empty()) {
    fmt::format_to(o, "\n  The access gate's anomaly alerts in those minutes:\n");
    for (const std::string& alert : alerts_) fmt::format_to(o, "    {}\n", alert);
  }

  const WebhookSink::Counts sink = sink_.counts();
  fmt::format_to(o, "\nTime taken (wall clock)\n");
  fmt::format_to(o,
                 "  replay                  {:>8}  {} steps through the support plane, {} events\n",
                 Elapsed(timings_.replay), plan_.steps.size(), events_);
  fmt::format_to(o,
                 "  sequencing              {:>8}  after the replay, until every event was under a "
                 "signed checkpoint\n",
                 Elapsed(timings_.sequencing));
  fmt::format_to(o, "  declare                 {:>8}\n", Elapsed(timings_.declare));
  fmt::format_to(o, "  scope                   {:>8}  {} activity rows examined\n",
                 Elapsed(timings_.scope), scope_.rows_examined);
  fmt::format_to(o, "  evidence                {:>8}  {} packages, each verified offline\n",
                 Elapsed(timings_.evidence), evidence_paths_.size());
  fmt::format_to(o,
                 "  notify, all delivered   {:>8}  {} webhooks to {} tenants; the sink verified {} "
                 "signatures, {} refused\n",
                 Elapsed(timings_.notify), delivered_, notified_.tenants.size(), sink.verified,
                 sink.rejected);

  if (temporary_ && !flags_.keep) {
    fmt::format_to(o, "\nThe evidence and the report were written to {} (--keep keeps it).\n",
                   dir_);
    return text;
  }
  fmt::format_to(o, "\nFiles\n");
  for (const std::string& path : evidence_paths_) fmt::format_to(o, "  evidence  {}\n", path);
  fmt::format_to(o, "  report    {}\n", report_path_);
  if (!evidence_paths_.empty()) {
    fmt::format_to(o, "  check     custos log verify --evidence {}\n", evidence_paths_.front());
  }
  fmt::format_to(o, "\nServe it: custos serve --demo --data-dir {}\n", dir_);
  fmt::format_to(o, "  curl -H 'Authorization: SSWS {}' {}/provider/api/v1/incidents/{}/report\n",
                 provider_token_, base_url_, incident_.id);
  return text;
}

}  // namespace

CLI::App* AddDemoCommand(CLI::App& app, DemoFlags& flags) {
  CLI::App* demo = app.add_subcommand(
      "demo",
      "replay the January 2022 support-workstation incident at scale on a fresh store, then "
      "declare, scope, prove and notify it");
  demo->add_option("--config", flags.config.config_path,
                   "configuration file (default: ./custos.toml when present)");
  demo->add_option("--data-dir", flags.config.data_dir,
                   "new or empty directory (default: a temporary one, removed unless --keep)");
  demo->add_option("--set", flags.config.sets, "override a setting, e.g. --set server.port=9000")
      ->type_name("KEY=VALUE");
  demo->add_option("--tenants", flags.tenants, "customer tenants")
      ->check(CLI::Range(2, 2000))
      ->default_str("400");
  demo->add_option("--engineers", flags.engineers, "the contractor's support engineers")
      ->check(CLI::Range(1, 1000))
      ->default_str("40");
  demo->add_option("--days", flags.days, "working days; the takeover is on the last")
      ->check(CLI::Range(1, 30))
      ->default_str("5");
  demo->add_option("--seed", flags.seed, "seed of the story (same seed, same story)")
      ->default_str(std::to_string(flags.seed));
  demo->add_flag("--keep", flags.keep, "keep the temporary data directory");
  demo->add_flag("--force", flags.force, "replace the data of an earlier demo in --data-dir");
  return demo;
}

int RunDemo(const DemoFlags& flags, std::FILE* out, std::FILE* err) {
  return Demo(flags, out, err).Run();
}

}  // namespace custos::cli
