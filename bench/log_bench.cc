// Benchmarks of the verifiable System Log, recorded in docs/benchmarks.md.
//
//   log_bench append [--events N] [--batch B] [--dir DIR | --pg URL]
//     Durable appends through the whole path: a producer thread commits events (real
//     MakeEvent events of a sign-in, ~1 KB) into the outbox in transactions of B events, each
//     commit fsynced (synchronous=FULL), while the sequencer appends them to the tenant's tree,
//     commits positions and tiles and signs checkpoints. Reports events/s from the first commit
//     until a signed checkpoint covers all N. In the same run, the same rows are inserted into
//     a fresh store by the same producer with no sequencer (plain inserts), and the ratio is
//     printed.
//   log_bench proofs [--size N] [--samples S] [--dir DIR | --pg URL]
//     Builds a log of N entries (synthetic leaf hashes, tiles stored as the sequencer stores
//     them), then times S inclusion proofs (random index, tree size N) and S consistency proofs
//     (random old size, new size N) through LogReader, the path the HTTP endpoints use, with
//     the store warm. Reports p50/p99/mean in microseconds.
//
// Stores: SQLite files under DIR (synchronous=FULL unless BENCH_SYNC_NORMAL is set), or, with
// --pg, PostgreSQL databases created for the run on the server whose admin URL is given
// (postgresql://user@host:port/postgres), with the C collation the store requires, and dropped
// at the end. The server's own settings (fsync, synchronous_commit) decide durability there.
//
// Output: one JSON object per result on stdout; progress and log lines on stderr.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "audit/event.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "audit/merkle.h"
#include "audit/sequencer.h"
#include "audit/tiles.h"
#include "common/clock.h"
#include "common/logging.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "store/postgres/pg.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace custos {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point from) {
  return std::chrono::duration<double>(Clock::now() - from).count();
}

[[noreturn]] void Die(std::string_view what, const absl::Status& status) {
  fmt::print(stderr, "log_bench: {}: {}\n", what, status.ToString());
  std::exit(1);
}

// `url` with its database name replaced by `database` (query parameters kept).
std::string WithDatabase(const std::string& url, const std::string& database) {
  const size_t query = url.find('?');
  const std::string base = url.substr(0, query);
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  const size_t scheme = base.find("://");
  const size_t slash = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return (slash == std::string::npos ? base : base.substr(0, slash)) + "/" + database + rest;
}

void AdminExec(const std::string& admin_url, const std::string& sql) {
  auto conn = store::postgres::Connection::Open(admin_url);
  if (!conn.ok()) Die("connect to the PostgreSQL server", conn.status());
  // Quiet the NOTICE of DROP DATABASE IF EXISTS for a database that is not there.
  absl::Status st = (*conn)->Exec("SET client_min_messages = warning");
  if (st.ok()) st = (*conn)->Exec(sql);
  if (!st.ok()) Die(sql, st);
}

// Where the benchmark's stores live: SQLite files under `dir`, or PostgreSQL databases on the
// server at `pg_admin_url` when it is not empty. Each Open gives a new, empty store; Clean
// removes them all once their stores are destroyed.
class Stores {
 public:
  Stores(std::string dir, std::string pg_admin_url)
      : dir_(std::move(dir)), pg_admin_url_(std::move(pg_admin_url)) {}

  std::string_view backend() const { return pg_admin_url_.empty() ? "sqlite" : "postgres"; }

  std::unique_ptr<store::Store> Open(std::string_view name) {
    if (!pg_admin_url_.empty()) return OpenPostgres(name);
    const std::string dir = fmt::format("{}/{}", dir_, name);
    std::filesystem::remove_all(dir);
    auto store =
        store::OpenSqliteStore({.path = dir + "/custos.db",
                                .synchronous_full = std::getenv("BENCH_SYNC_NORMAL") == nullptr});
    if (!store.ok()) Die("open store", store.status());
    return *std::move(store);
  }

  void Clean() {
    std::filesystem::remove_all(dir_);
    for (const std::string& database : databases_) {
      AdminExec(pg_admin_url_, fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", database));
    }
    databases_.clear();
  }

 private:
  std::unique_ptr<store::Store> OpenPostgres(std::string_view name) {
    // The pid keeps two benchmarks on one server apart; a database left by a killed run of
    // this pid is dropped first.
    const std::string database = fmt::format("custos_log_bench_{}_{}", ::getpid(), name);
    AdminExec(pg_admin_url_, fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", database));
    AdminExec(pg_admin_url_, fmt::format("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                                         "LC_COLLATE 'C' LC_CTYPE 'C'",
                                         database));
    auto store = store::OpenPostgresStore({.conninfo = WithDatabase(pg_admin_url_, database)});
    if (!store.ok()) Die("open store", store.status());
    databases_.push_back(database);
    return *std::move(store);
  }

  std::string dir_;
  std::string pg_admin_url_;
  std::vector<std::string> databases_;
};

const TenantId kTenant("00obench00000000000");

void CreateTenant(store::Store& store) {
  absl::Status st = store.Write([](store::Transaction& tx) {
    return tx.Tenants().Insert({.id = kTenant, .name = "bench", .created = absl::Now()});
  });
  if (!st.ok()) Die("create tenant", st);
}

std::vector<store::EventRecord> MakeEvents(int n) {
  crypto::SeededRandom random(1);
  FakeClock clock;
  std::vector<store::EventRecord> events;
  events.reserve(n);
  audit::RequestContext ctx;
  ctx.actor = {"00u1a2b3c4d5e6f7g8h", "User", "jane.doe@example.com", "Jane Doe"};
  ctx.ip_address = "203.0.113.7";
  ctx.user_agent =
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/121.0.0.0 Safari/537.36";
  ctx.url = "/t/bench/api/v1/authn";
  for (int i = 0; i < n; ++i) {
    ctx.request_id = random.Token(20);
    ctx.external_session_id = "102" + random.Token(17);
    audit::EventSpec spec{.event_type = "user.session.start",
                          .display_message = "User login to Custos",
                          .targets = {ctx.actor},
                          .credential_type = "PASSWORD"};
    events.push_back(audit::MakeEvent(kTenant, ctx, spec, clock, random));
    clock.Advance(absl::Milliseconds(1));
  }
  return events;
}

// Commits `events` in transactions of `batch`; returns seconds.
double Produce(store::Store& store, const std::vector<store::EventRecord>& events, int batch) {
  auto start = Clock::now();
  for (size_t i = 0; i < events.size(); i += batch) {
    absl::Status st = store.Write([&](store::Transaction& tx) -> absl::Status {
      for (size_t j = i; j < std::min(events.size(), i + batch); ++j) {
        absl::StatusOr<int64_t> seq = tx.Events().Append(events[j]);
        if (!seq.ok()) return seq.status();
      }
      return absl::OkStatus();
    });
    if (!st.ok()) Die("append", st);
  }
  return Seconds(start);
}

int Append(int n, int batch, Stores& stores) {
  fmt::print(stderr, "making {} events\n", n);
  std::vector<store::EventRecord> events = MakeEvents(n);
  size_t bytes = 0;
  for (const auto& e : events) bytes += e.json.size();

  // Plain inserts of the same rows, no sequencer.
  double plain_s;
  {
    auto store = stores.Open("plain");
    CreateTenant(*store);
    fmt::print(stderr, "plain {} inserts\n", stores.backend());
    plain_s = Produce(*store, events, batch);
  }

  // The whole path.
  auto store = stores.Open("logged");
  CreateTenant(*store);
  auto sealer = crypto::Sealer::FromKey(std::string(32, 'k'));
  crypto::SeededRandom random(2);
  audit::LogKeys keys(*store, *sealer, SystemClock::Get(), random);
  if (absl::Status st = keys.EnsureKey("bench.example"); !st.ok()) Die("key", st);
  audit::Sequencer sequencer(*store, keys, SystemClock::Get(),
                             {.host = "bench.example", .interval = absl::Milliseconds(5)});
  if (absl::Status st = sequencer.Recover(); !st.ok()) Die("recover", st);
  audit::LogReader reader(*store);
  fmt::print(stderr, "outbox -> sequencer -> tree -> checkpoint\n");
  auto start = Clock::now();
  sequencer.Start();
  double produce_s = Produce(*store, events, batch);
  while (true) {
    absl::StatusOr<store::CheckpointRecord> latest = reader.LatestCheckpoint(kTenant.value());
    if (latest.ok() && latest->size == static_cast<uint64_t>(n)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  double total_s = Seconds(start);
  sequencer.Stop();
  audit::Sequencer::Stats stats = sequencer.stats();

  // The same sequencer alone over a full outbox of n events (no producer competing).
  auto drain_store = stores.Open("drain");
  CreateTenant(*drain_store);
  audit::LogKeys drain_keys(*drain_store, *sealer, SystemClock::Get(), random);
  if (absl::Status st = drain_keys.EnsureKey("bench.example"); !st.ok()) Die("key", st);
  Produce(*drain_store, events, batch);
  audit::Sequencer drainer(*drain_store, drain_keys, SystemClock::Get(), {.host = "bench.example"});
  auto drain_start = Clock::now();
  if (absl::Status st = drainer.Drain(); !st.ok()) Die("drain", st);
  double drain_s = Seconds(drain_start);

  fmt::print(
      "{{\"bench\":\"append\",\"store\":\"{}\",\"events\":{},\"batch\":{},\"avg_event_bytes\":{},"
      "\"plain_insert_per_s\":{:.0f},\"whole_path_per_s\":{:.0f},\"ratio\":{:.3f},"
      "\"producer_per_s\":{:.0f},\"sequencer_alone_per_s\":{:.0f},\"rounds\":{},"
      "\"checkpoints\":{}}}\n",
      stores.backend(), n, batch, bytes / n, n / plain_s, n / total_s, plain_s / total_s,
      n / produce_s, n / drain_s, stats.rounds, stats.checkpoints);
  return 0;
}

double Percentile(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int Proofs(uint64_t size, int samples, Stores& stores) {
  auto store = stores.Open("proofs");
  const std::string log_id = kTenant.value();
  CreateTenant(*store);
  fmt::print(stderr, "building a tree of {} entries\n", size);
  audit::tiles::TreeBuilder tree;
  auto start = Clock::now();
  auto flush = [&]() {
    std::vector<store::LogTileRecord> tiles = tree.TakeChangedTiles();
    absl::Status st = store->Write([&](store::Transaction& tx) -> absl::Status {
      for (store::LogTileRecord& tile : tiles) {
        tile.log_id = log_id;
        absl::Status put = tx.Logs().PutTile(tile);
        if (!put.ok()) return put;
      }
      return absl::OkStatus();
    });
    if (!st.ok()) Die("tiles", st);
  };
  for (uint64_t i = 0; i < size; ++i) {
    tree.Append(crypto::Sha256(fmt::format("entry {}", i)));
    if ((i + 1) % (1 << 20) == 0) {
      flush();
      fmt::print(stderr, "  {} entries, {:.0f} s\n", i + 1, Seconds(start));
    }
  }
  flush();
  const std::string root = tree.Root();
  absl::Status st = store->Write([&](store::Transaction& tx) -> absl::Status {
    absl::Status put = tx.Logs().PutState({.log_id = log_id,
                                           .origin = "bench.example/t/bench",
                                           .size = size,
                                           .root_hash = root,
                                           .updated = absl::Now()});
    if (!put.ok()) return put;
    return tx.Logs().PutCheckpoint({.log_id = log_id,
                                    .size = size,
                                    .root_hash = root,
                                    .note = "unsigned (benchmark)",
                                    .key_id = "none",
                                    .signed_at = absl::Now()});
  });
  if (!st.ok()) Die("state", st);
  fmt::print(stderr, "tree built in {:.0f} s\n", Seconds(start));

  audit::LogReader reader(*store);
  std::mt19937_64 rng(42);
  auto time_us = [&](auto fn) {
    auto t = Clock::now();
    fn();
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
  };
  // Warm the store and the tile cache the way a running server is warm.
  for (int i = 0; i < samples / 10; ++i) {
    (void)reader.InclusionHashes(log_id, rng() % size, size);
  }
  std::vector<double> inclusion, consistency;
  for (int i = 0; i < samples; ++i) {
    const uint64_t index = rng() % size;
    inclusion.push_back(time_us([&] {
      auto proof = reader.InclusionHashes(log_id, index, size);
      if (!proof.ok()) Die("inclusion", proof.status());
    }));
  }
  // Spot-check proofs against the root, so the timing is of correct answers.
  for (int i = 0; i < 100; ++i) {
    const uint64_t index = rng() % size;
    auto proof = reader.InclusionHashes(log_id, index, size);
    absl::Status ok = audit::merkle::VerifyInclusion(
        index, size, crypto::Sha256(fmt::format("entry {}", index)), *proof, root);
    if (!ok.ok()) Die("inclusion proof does not verify", ok);
  }
  for (int i = 0; i < samples; ++i) {
    const uint64_t from = 1 + rng() % (size - 1);
    consistency.push_back(time_us([&] {
      auto proof = reader.Consistency(log_id, from, size);
      if (!proof.ok()) Die("consistency", proof.status());
    }));
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / v.size();
  };
  fmt::print(
      "{{\"bench\":\"proofs\",\"store\":\"{}\",\"size\":{},\"samples\":{},"
      "\"inclusion_us\":{{\"p50\":{:.1f},\"p99\":{:.1f},\"mean\":{:.1f}}},"
      "\"consistency_us\":{{\"p50\":{:.1f},\"p99\":{:.1f},\"mean\":{:.1f}}}}}\n",
      stores.backend(), size, samples, Percentile(inclusion, 0.5), Percentile(inclusion, 0.99),
      mean(inclusion), Percentile(consistency, 0.5), Percentile(consistency, 0.99),
      mean(consistency));
  return 0;
}

}  // namespace
}  // namespace custos

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto opt = [&](std::string_view name, int64_t def) -> int64_t {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == name) return std::stoll(args[i + 1]);
    }
    return def;
  };
  std::string dir = fmt::format("/tmp/custos-log-bench-{}", ::getpid());
  std::string pg;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--dir") dir = args[i + 1];
    if (args[i] == "--pg") pg = args[i + 1];
  }
  if (args.empty() || (args[0] != "append" && args[0] != "proofs")) {
    fmt::print(stderr,
               "usage: log_bench append [--events N] [--batch B] [--dir DIR | --pg URL]\n"
               "       log_bench proofs [--size N] [--samples S] [--dir DIR | --pg URL]\n"
               "--pg: admin URL of a PostgreSQL server (postgresql://user@host:port/postgres);\n"
               "      the benchmark creates its databases there and drops them at the end.\n");
    return 2;
  }
  // stdout carries the results only; the sequencer's notes go to stderr, warnings and up.
  if (absl::Status st = custos::InitLogging("warn", "text"); !st.ok()) return 1;
  custos::Stores stores(dir, pg);
  const int status = args[0] == "append"
                         ? custos::Append(static_cast<int>(opt("--events", 500000)),
                                          static_cast<int>(opt("--batch", 1000)), stores)
                         : custos::Proofs(static_cast<uint64_t>(opt("--size", 10'000'000)),
                                          static_cast<int>(opt("--samples", 100000)), stores);
  stores.Clean();
  return status;
}
