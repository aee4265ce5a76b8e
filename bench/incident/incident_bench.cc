// Scope query latency on a large System Log (issue 6), recorded in docs/benchmarks.md.
//
//   custos_bench_incident [--dir DIR] [--events N] [--days D] [--runs R] [--reuse]
//                         [--full-export] [--json]
//
// 1. Generates (unless --reuse finds one in DIR) a fresh embedded store (store::SqliteStore with
//    its migrations, synchronous=NORMAL) of N System Log events over D days (default 10,000,000
//    over 30 days) across 400 tenants: ordinary tenant events (sign-ins, MFA, app access) and
//    the support work of one contractor (40 operators on 40 managed devices, ~3,000 support
//    events a day on 360 of the tenants), each support event written by
//    support::AppendTransparencyEvents as the plane writes it: the tenant's event, its provider
//    copy and the activity row. On the last day one device is taken over for 25 minutes from
//    another address and reaches the two tenants its operator holds grants for (views, refused
//    resets). Events are appended in transactions of 20,000.
// 2. Times incident::ScopeIncident with the vendor, that device and the attacker's /24 as
//    indicators over the last 5 days (compromise window: the 25 minutes), and over the
//    25-minute window alone; one warm-up run, then R timed runs (default 9): p50 and p90.
// 3. Copies the provider log's events of the whole period, as their JSON text, into a table
//    with no index in a separate SQLite file (DIR/export.db), and asks the potential-scope
//    question there with json_extract in one SQL query; same timing; checks that both answers
//    name the same tenants and prints the ratio of the medians (export / Custos).
// 4. With --full-export, also copies every event of the store (all tenants' logs and the
//    provider log, JSON text) into an unindexed table (DIR/export-all.db) and times the same
//    query there (3 timed runs after a warm-up: each reads the whole export).
//
// Output: a table on stdout (and one JSON object with --json); progress on stderr.

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "audit/event.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/time_format.h"
#include "crypto/random.h"
#include "incident/scope.h"
#include "store/sqlite/sqlite_store.h"
#include "support/plane.h"

namespace custos {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kTenants = 400;
constexpr int kSupportedTenants = 360;  // the contractor works for these
constexpr int kOperators = 40;
constexpr int kSupportPerDay = 3000;
constexpr int kBatch = 20000;
constexpr int kCompromisedOperator = 7;
constexpr const char* kVendor = "vnd0contractor00001";
constexpr const char* kAttackerRange = "203.0.113.0/24";
const absl::Time kStart = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

double Seconds(SteadyClock::time_point from) {
  return std::chrono::duration<double>(SteadyClock::now() - from).count();
}

[[noreturn]] void Die(std::string_view what, const absl::Status& status) {
  fmt::print(stderr, "custos_bench_incident: {}: {}\n", what, status.ToString());
  std::exit(1);
}

[[noreturn]] void DieSql(std::string_view what, sqlite3* db) {
  fmt::print(stderr, "custos_bench_incident: {}: {}\n", what, sqlite3_errmsg(db));
  std::exit(1);
}

TenantId TenantAt(int i) { return TenantId(fmt::format("00tbench{:011d}", i)); }
std::string OperatorAt(int i) { return fmt::format("00uop{:014d}", i); }
std::string DeviceAt(int i) { return fmt::format("dev0contractor{:05d}", i); }

// Each run over the whole-log export reads all of it: fewer of them.
constexpr int kFullExportRuns = 3;

struct Options {
  std::string dir = "/tmp/custos-bench-incident";
  int64_t events = 10'000'000;
  int days = 30;
  int runs = 9;
  bool reuse = false;
  bool full_export = false;
  bool json = false;
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "{} needs a value\n", arg);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--dir") {
      o.dir = value();
    } else if (arg == "--events") {
      o.events = std::stoll(value());
    } else if (arg == "--days") {
      o.days = std::stoi(value());
    } else if (arg == "--runs") {
      o.runs = std::stoi(value());
    } else if (arg == "--reuse") {
      o.reuse = true;
    } else if (arg == "--full-export") {
      o.full_export = true;
    } else if (arg == "--json") {
      o.json = true;
    } else {
      fmt::print(stderr,
                 "usage: custos_bench_incident [--dir DIR] [--events N] [--days D] [--runs R] "
                 "[--reuse] [--full-export] [--json]\n");
      std::exit(2);
    }
  }
  if (o.events < 100'000 || o.days < 6 || o.runs < 1) {
    fmt::print(stderr, "need --events >= 100000, --days >= 6, --runs >= 1\n");
    std::exit(2);
  }
  return o;
}

std::unique_ptr<store::Store> OpenStore(const std::string& dir) {
  auto store = store::OpenSqliteStore(
      {.path = dir + "/custos.db", .synchronous_full = false, .writer_cache_mib = 256});
  if (!store.ok()) Die("open store", store.status());
  return *std::move(store);
}

// The windows the scope query is asked about.
struct Scenario {
  incident::Window window;      // the last five days
  incident::Window compromise;  // 25 minutes on the last day
};

Scenario ScenarioOf(int days) {
  const absl::Time end = kStart + absl::Hours(24 * days);
  const absl::Time takeover = end - absl::Hours(24) + absl::Hours(13) + absl::Minutes(12);
  return {.window = {end - absl::Hours(24 * 5), end},
          .compromise = {takeover, takeover + absl::Minutes(25)}};
}

// Writes the store; returns the number of events appended and of activity rows.
struct Generated {
  int64_t events = 0;
  int64_t activity = 0;
  double seconds = 0;
};

Generated Generate(store::Store& store, const Options& o) {
  std::vector<store::TenantRecord> tenants;
  for (int i = 0; i < kTenants; ++i) {
    tenants.push_back({.id = TenantAt(i),
                       .name = fmt::format("tenant-{:03d}", i),
                       .created = kStart - absl::Hours(24 * 90)});
  }
  absl::Status st = store.Write([&](store::Transaction& tx) -> absl::Status {
    for (const auto& t : tenants) {
      if (absl::Status s = tx.Tenants().Insert(t); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  if (!st.ok()) Die("tenants", st);

  const Scenario scenario = ScenarioOf(o.days);
  const absl::Duration period = absl::Hours(24 * o.days);
  // Each support event costs two events (tenant + provider copy); the rest are ordinary.
  const int64_t support_total =
      std::min<int64_t>(static_cast<int64_t>(kSupportPerDay) * o.days, o.events / 20);
  const int64_t steps = o.events - support_total;
  const double support_p = static_cast<double>(support_total) / static_cast<double>(steps);
  const absl::Duration step = period / steps;

  std::mt19937_64 rng(6);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  crypto::SeededRandom random(6);
  FakeClock clock(kStart);

  static const char* kOrdinary[] = {
      "user.session.start",     "user.authentication.sso", "user.authentication.auth_via_mfa",
      "app.oauth2.token.grant", "user.session.end",        "user.authentication.verify"};
  static const char* kSupportTypes[] = {"support.view",
                                        "support.view",
                                        "support.view",
                                        "support.view",
                                        "support.action.mfa_reset",
                                        "support.access.request"};

  // Operator i holds standing grants at two tenants; the compromised one's are the targets.
  auto grant_tenant = [](int op, int k) { return (op * 9 + k * 181) % kSupportedTenants; };

  Generated g;
  const auto started = SteadyClock::now();
  auto last_report = started;
  int64_t in_batch = 0;
  bool compromise_done = false;
  audit::RequestContext ctx;
  ctx.user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/121.0";

  auto support_event = [&](store::Transaction& tx, int op, int tenant, const std::string& ip,
                           const std::string& type, bool refused) -> absl::Status {
    support::SupportFacts facts{.operator_id = OperatorAt(op),
                                .operator_login = fmt::format("eng{:02d}@contractor.example", op),
                                .vendor_id = kVendor,
                                .vendor_name = "Contractor Ltd",
                                .employing_entity = "Contractor Ltd",
                                .country = "CR",
                                .device_id = DeviceAt(op),
                                .case_id = fmt::format("case{:06d}", tenant),
                                .grant_id = fmt::format("grt{:03d}x{:03d}", op, tenant)};
    audit::RequestContext c;
    const bool tenant_admin = type == "support.access.request" && unit(rng) < 0.5;
    c.actor = tenant_admin ? audit::Principal{fmt::format("00uadmin{:011d}", tenant), "User",
                                              "admin@tenant.example", "Tenant Admin"}
                           : audit::Principal{facts.operator_id, "User", facts.operator_login,
                                              fmt::format("Engineer {}", op)};
    c.request_id = random.Token(20);
    c.ip_address = ip;
    c.user_agent = ctx.user_agent;
    c.url = "/provider/api/v1/support";
    c.external_session_id =
        fmt::format("sop{:02d}d{}", op, absl::ToInt64Hours(clock.Now() - kStart) / 24);
    audit::EventSpec spec{.event_type = type,
                          .display_message = "Support activity",
                          .outcome = std::string(refused ? audit::kDeny : audit::kSuccess),
                          .reason = refused ? "grant does not cover password_reset" : ""};
    if (type == "support.view") {
      spec.debug_data = {{"resource", "users"}, {"fields", "id,status,profile.login"}};
    } else if (type != "support.access.request") {
      spec.debug_data = {{"action", std::string(refused ? support::kActionPasswordReset
                                                        : support::kActionMfaReset)}};
    }
    const store::TenantRecord& t = tenants[tenant];
    ++g.activity;
    g.events += 2;
    return support::AppendTransparencyEvents(tx, clock, random, &t, c, facts, std::move(spec));
  };

  int64_t i = 0;
  while (i < steps) {
    st = store.Write([&](store::Transaction& tx) -> absl::Status {
      for (in_batch = 0; in_batch < kBatch && i < steps; ++i) {
        const absl::Time now = kStart + step * i;
        clock.Set(now);
        if (!compromise_done && now >= scenario.compromise.start + absl::Minutes(1)) {
          // The takeover: the device's session from the attacker's address reaches both
          // tenants the operator holds grants for, views users, tries resets (refused).
          compromise_done = true;
          for (int k = 0; k < 12; ++k) {
            clock.Set(now + absl::Minutes(2 * k));
            const int tenant = grant_tenant(kCompromisedOperator, k % 2);
            const bool reset = k % 3 == 2;
            if (absl::Status s =
                    support_event(tx, kCompromisedOperator, tenant, "203.0.113.45",
                                  reset ? "support.action.password_reset" : "support.view", reset);
                !s.ok()) {
              return s;
            }
            in_batch += 2;
          }
          clock.Set(now);
        }
        if (unit(rng) < support_p) {
          int op = static_cast<int>(rng() % kOperators);
          // The compromised operator works the other days, not during the takeover.
          if (op == kCompromisedOperator && now >= scenario.compromise.start &&
              now < scenario.compromise.end) {
            op = kCompromisedOperator + 1;
          }
          const int tenant = unit(rng) < 0.6 ? grant_tenant(op, static_cast<int>(rng() % 2))
                                             : static_cast<int>(rng() % kSupportedTenants);
          const std::string type = kSupportTypes[rng() % std::size(kSupportTypes)];
          if (absl::Status s =
                  support_event(tx, op, tenant, fmt::format("198.51.100.{}", 10 + op), type, false);
              !s.ok()) {
            return s;
          }
          in_batch += 2;
          continue;
        }
        const int tenant = static_cast<int>(rng() % kTenants);
        const int user = static_cast<int>(rng() % 5000);
        ctx.actor = {fmt::format("00u{:03d}x{:012d}", tenant, user), "User",
                     fmt::format("user{}@tenant-{:03d}.example", user, tenant),
                     fmt::format("User {}", user)};
        ctx.request_id = random.Token(20);
        ctx.ip_address = fmt::format("10.{}.{}.{}", tenant % 256, user % 256, (user / 256) % 256);
        ctx.url = fmt::format("/t/tenant-{:03d}/api/v1/authn", tenant);
        ctx.external_session_id = "102" + random.Token(17);
        audit::EventSpec spec{.event_type = kOrdinary[rng() % std::size(kOrdinary)],
                              .display_message = "User activity",
                              .targets = {ctx.actor},
                              .credential_type = "PASSWORD"};
        const store::EventRecord e = audit::MakeEvent(TenantAt(tenant), ctx, spec, clock, random);
        if (absl::StatusOr<int64_t> seq = tx.Events().Append(e); !seq.ok()) return seq.status();
        ++g.events;
        ++in_batch;
      }
      return absl::OkStatus();
    });
    if (!st.ok()) Die("generate", st);
    if (Seconds(last_report) >= 5 || i == steps) {
      last_report = SteadyClock::now();
      const double s = Seconds(started);
      const double rate = static_cast<double>(g.events) / s;
      fmt::print(stderr, "  {:>11} / {} events, {:.0f} events/s, {:.0f} s elapsed, ETA {:.0f} s\n",
                 g.events, o.events, rate, s,
                 static_cast<double>(std::max<int64_t>(0, o.events - g.events)) / rate);
    }
  }
  g.seconds = Seconds(started);
  return g;
}

struct Timing {
  std::vector<double> ms;
  double Quantile(double q) const {
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    // Nearest rank.
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::max<size_t>(rank, 1) - 1];
  }
};

template <typename F>
Timing Time(int runs, F&& f) {
  f();  // warm-up, not counted
  Timing t;
  for (int r = 0; r < runs; ++r) {
    const auto start = SteadyClock::now();
    f();
    t.ms.push_back(Seconds(start) * 1000);
  }
  return t;
}

int64_t ScalarInt(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) DieSql(sql, db);
  int64_t v = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  return v;
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    fmt::print(stderr, "custos_bench_incident: {}: {}\n", sql, err ? err : "?");
    std::exit(1);
  }
}

// The potential-scope question over the unindexed export, in one query.
std::string ExportQuery(const Scenario& s) {
  return fmt::format(
      "SELECT DISTINCT json_extract(json, '$.debugContext.debugData.tenantId') FROM export "
      "WHERE unixepoch(json_extract(json, '$.published')) >= {} "
      "AND unixepoch(json_extract(json, '$.published')) < {} "
      "AND json_extract(json, '$.debugContext.debugData.tenantId') IS NOT NULL "
      "AND (json_extract(json, '$.actor.id') = "
      "json_extract(json, '$.debugContext.debugData.operatorId') "
      "OR json_extract(json, '$.actor.id') = 'unknown') "
      "AND (json_extract(json, '$.debugContext.debugData.vendorId') = '{}' "
      "OR json_extract(json, '$.debugContext.debugData.deviceId') = '{}' "
      "OR json_extract(json, '$.client.ipAddress') LIKE '203.0.113.%') "
      "ORDER BY 1",
      absl::ToUnixSeconds(s.window.start), absl::ToUnixSeconds(s.window.end), kVendor,
      DeviceAt(kCompromisedOperator));
}

std::vector<std::string> RunExportQuery(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) DieSql(sql, db);
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
  }
  if (rc != SQLITE_DONE) DieSql("export query", db);
  sqlite3_finalize(stmt);
  return out;
}

// Opens (making it on first use) an SQLite file holding one unindexed table `export (json)`
// filled with the JSON text of the store's events that `where` selects, in log order.
sqlite3* OpenExport(const std::string& path, const std::string& db_path, const std::string& where,
                    std::string_view what) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) DieSql("open export", db);
  if (ScalarInt(db, "SELECT count(*) FROM sqlite_master WHERE name = 'export'") == 0) {
    fmt::print(stderr, "exporting {} into {}\n", what, path);
    Exec(db, fmt::format("ATTACH '{}' AS src", db_path));
    Exec(db, fmt::format("BEGIN; CREATE TABLE export (json TEXT NOT NULL); "
                         "INSERT INTO export SELECT json FROM src.events {} ORDER BY seq; COMMIT",
                         where));
    Exec(db, "DETACH src");
  }
  return db;
}

std::string FileSize(const std::string& path) {
  std::error_code ec;
  uintmax_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    const auto n = std::filesystem::file_size(path + suffix, ec);
    if (!ec) total += n;
  }
  return fmt::format("{:.1f} MB", static_cast<double>(total) / 1e6);
}

int Main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  const std::string db_path = o.dir + "/custos.db";
  const bool exists = std::filesystem::exists(db_path);
  Generated g;
  if (!o.reuse || !exists) {
    std::filesystem::remove_all(o.dir);
    std::filesystem::create_directories(o.dir);
    fmt::print(stderr, "generating {} events over {} days into {}\n", o.events, o.days, db_path);
    auto store = OpenStore(o.dir);
    g = Generate(*store, o);
  } else {
    fmt::print(stderr, "reusing {}\n", db_path);
  }
  auto store = OpenStore(o.dir);
  const Scenario scenario = ScenarioOf(o.days);

  // The export: the provider log's events of the whole period, JSON text, no index.
  const std::string export_path = o.dir + "/export.db";
  sqlite3* db =
      OpenExport(export_path, db_path, "WHERE tenant_id = 'provider'", "the provider log");
  Exec(db, fmt::format("ATTACH '{}' AS src", db_path));
  const int64_t store_events = ScalarInt(db, "SELECT count(*) FROM src.events");
  const int64_t store_activity = ScalarInt(db, "SELECT count(*) FROM src.support_activity");
  Exec(db, "DETACH src");
  const int64_t exported = ScalarInt(db, "SELECT count(*) FROM export");

  incident::Indicators indicators{.vendor_ids = {kVendor},
                                  .device_ids = {DeviceAt(kCompromisedOperator)},
                                  .ip_ranges = {kAttackerRange}};
  incident::ScopeResult five_day;
  auto scope = [&](const incident::Window& w, const incident::Window& c) {
    absl::StatusOr<incident::ScopeResult> r = incident::ScopeIncident(*store, indicators, w, c);
    if (!r.ok()) Die("scope", r.status());
    return *std::move(r);
  };
  fmt::print(stderr, "timing ScopeIncident, 5-day window\n");
  const Timing custos5 =
      Time(o.runs, [&] { five_day = scope(scenario.window, scenario.compromise); });
  fmt::print(stderr, "timing ScopeIncident, 25-minute window\n");
  incident::ScopeResult short_window;
  const Timing custos25 =
      Time(o.runs, [&] { short_window = scope(scenario.compromise, scenario.compromise); });

  const std::string sql = ExportQuery(scenario);
  std::vector<std::string> sql_tenants;
  fmt::print(stderr, "timing the export query\n");
  const Timing plain = Time(o.runs, [&] { sql_tenants = RunExportQuery(db, sql); });
  sqlite3_close(db);
  bool same = sql_tenants == five_day.PotentialTenantIds();

  // The same question over an unindexed export of the whole System Log.
  const std::string full_path = o.dir + "/export-all.db";
  int64_t full_exported = 0;
  std::optional<Timing> full;
  std::vector<std::string> full_tenants;
  if (o.full_export) {
    sqlite3* all = OpenExport(full_path, db_path, "", "every event");
    full_exported = ScalarInt(all, "SELECT count(*) FROM export");
    fmt::print(stderr, "timing the query over the whole export\n");
    full = Time(kFullExportRuns, [&] { full_tenants = RunExportQuery(all, sql); });
    sqlite3_close(all);
    same = same && full_tenants == sql_tenants;
  }

  const double ratio = plain.Quantile(0.5) / custos5.Quantile(0.5);
  fmt::print("store: {} events ({} activity rows) over {} days, {} tenants; {} on disk\n",
             store_events, store_activity, o.days, kTenants, FileSize(db_path));
  if (g.events > 0) {
    fmt::print("generated {} events in {:.1f} s ({:.0f} events/s)\n", g.events, g.seconds,
               static_cast<double>(g.events) / g.seconds);
  }
  fmt::print("export: {} provider-log events, {} on disk, no index\n", exported,
             FileSize(export_path));
  fmt::print("{} timed runs after one warm-up\n\n", o.runs);
  fmt::print("{:<46} {:>9} {:>9} {:>9} {:>10}\n", "query", "p50 ms", "p90 ms", "potential",
             "confirmed");
  fmt::print("{:<46} {:>9.1f} {:>9.1f} {:>9} {:>10}\n", "ScopeIncident, 5-day window",
             custos5.Quantile(0.5), custos5.Quantile(0.9), five_day.potential, five_day.confirmed);
  fmt::print("{:<46} {:>9.1f} {:>9.1f} {:>9} {:>10}\n", "ScopeIncident, 25-minute window",
             custos25.Quantile(0.5), custos25.Quantile(0.9), short_window.potential,
             short_window.confirmed);
  fmt::print("{:<46} {:>9.1f} {:>9.1f} {:>9} {:>10}\n",
             "json_extract over unindexed export, 5 days", plain.Quantile(0.5), plain.Quantile(0.9),
             sql_tenants.size(), "-");
  if (full) {
    fmt::print("{:<46} {:>9.1f} {:>9.1f} {:>9} {:>10}\n",
               "json_extract over whole-log export, 5 days", full->Quantile(0.5),
               full->Quantile(0.9), full_tenants.size(), "-");
  }
  fmt::print("\nrows examined (5 days): {}; same tenants from all: {}\n", five_day.rows_examined,
             same ? "yes" : "NO");
  fmt::print("ratio export / Custos (p50, 5 days): {:.1f}x; goal <= 1000 ms p50: {}\n", ratio,
             custos5.Quantile(0.5) <= 1000 ? "met" : "NOT met");
  if (full) {
    fmt::print(
        "whole-log export: {} events, {} on disk, no index ({} timed runs); "
        "ratio / Custos (p50): {:.0f}x\n",
        full_exported, FileSize(full_path), kFullExportRuns,
        full->Quantile(0.5) / custos5.Quantile(0.5));
  }
  if (o.json) {
    Json out = {{"events", store_events},
                {"activityRows", store_activity},
                {"days", o.days},
                {"tenants", kTenants},
                {"generatedSeconds", g.seconds},
                {"exportedEvents", exported},
                {"runs", o.runs},
                {"scope5dP50Ms", custos5.Quantile(0.5)},
                {"scope5dP90Ms", custos5.Quantile(0.9)},
                {"scope25mP50Ms", custos25.Quantile(0.5)},
                {"scope25mP90Ms", custos25.Quantile(0.9)},
                {"exportP50Ms", plain.Quantile(0.5)},
                {"exportP90Ms", plain.Quantile(0.9)},
                {"potential", five_day.potential},
                {"confirmed", five_day.confirmed},
                {"sameTenants", same},
                {"ratio", ratio}};
    if (full) {
      out["fullExportEvents"] = full_exported;
      out["fullExportP50Ms"] = full->Quantile(0.5);
      out["fullExportP90Ms"] = full->Quantile(0.9);
    }
    fmt::print("{}\n", out.dump());
  }
  return same ? 0 : 1;
}

}  // namespace
}  // namespace custos

int main(int argc, char** argv) { return custos::Main(argc, argv); }
