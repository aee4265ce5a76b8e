#include "audit/sequencer.h"

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <sqlite3.h>

#include "audit/checkpoint.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/postgres/pg.h"
#include "store/postgres/postgres_store.h"
#include "store/postgres/temp_database.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::audit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Forwards to a store but hands out leases that the test controls, so that two sequencers can
// both believe they lead (as a stalled leader does until it notices).
class ForcedLeadStore final : public store::Store {
 public:
  explicit ForcedLeadStore(store::Store& inner) : inner_(inner) {}

  absl::Status Write(absl::FunctionRef<absl::Status(store::Transaction&)> fn) override {
    return inner_.Write(fn);
  }
  absl::Status Read(absl::FunctionRef<absl::Status(store::Transaction&)> fn) override {
    return inner_.Read(fn);
  }
  absl::Status Ping() override { return inner_.Ping(); }
  void Close() override {}
  void SetObserver(store::StoreObserver* observer) override { inner_.SetObserver(observer); }
  // Every call succeeds, unless `refuse` is set: no exclusion at all.
  absl::StatusOr<std::unique_ptr<store::LeaderLease>> TryLead(std::string_view) override {
    if (refuse.load()) return nullptr;
    return std::make_unique<Lease>(generation_, generation_.load());
  }

  // Every lease handed out so far is lost.
  void RevokeLeases() { ++generation_; }
  std::atomic<bool> refuse{false};

 private:
  class Lease final : public store::LeaderLease {
   public:
    Lease(const std::atomic<int>& current, int generation)
        : current_(current), generation_(generation) {}
    bool Held() override { return current_.load() == generation_; }

   private:
    const std::atomic<int>& current_;
    const int generation_;
  };

  store::Store& inner_;
  std::atomic<int> generation_{0};
};

// Polls `done` for up to 20 s of real time (the sequencer's thread waits in real time).
template <typename Fn>
bool Eventually(Fn done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

constexpr std::string_view kHost = "id.example.com";

// Each test runs on the embedded store; the PostgreSQL build of this file (audit_log_postgres_test,
// label postgres) runs them on a new database of the server named by CUSTOS_TEST_POSTGRES, as
// several custos serve nodes share it.
enum class Backend { kSqlite, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgres";
}
void PrintTo(Backend backend, std::ostream* out) {
  *out << (backend == Backend::kSqlite ? "sqlite" : "postgres");
}

class SequencerTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kSqlite) {
      auto temp = store::TempSqliteStore::Open();
      ASSERT_TRUE(temp.ok()) << temp.status();
      temp_ = *std::move(temp);
      dir_ = temp_->dir();
    } else {
      const std::optional<std::string> url = store::postgres::TestServerUrl();
      if (!url.has_value()) {
        GTEST_SKIP() << "CUSTOS_TEST_POSTGRES is not set: no PostgreSQL server to test on "
                        "(scripts/with-postgres.sh starts one)";
      }
      auto database = store::postgres::TempDatabase::Create(*url, "sequencer");
      ASSERT_TRUE(database.ok()) << database.status();
      database_ = *std::move(database);
      auto opened = store::OpenPostgresStore({.conninfo = database_->url()});
      ASSERT_TRUE(opened.ok()) << opened.status();
      pg_store_ = *std::move(opened);
      std::string dir = (std::filesystem::temp_directory_path() / "custos-sequencer-XXXXXX");
      ASSERT_NE(::mkdtemp(dir.data()), nullptr);
      dir_ = dir;
    }
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    keys_ = std::make_unique<LogKeys>(store(), *sealer_, clock_, random_);
    ASSERT_TRUE(keys_->EnsureKey(kHost).ok());
    for (const char* name : {"acme", "globex"}) {
      store::TenantRecord tenant{
          .id = TenantId(fmt::format("00o{}", name)), .name = name, .created = clock_.Now()};
      ASSERT_TRUE(
          store().Write([&](store::Transaction& tx) { return tx.Tenants().Insert(tenant); }).ok());
    }
  }

  void TearDown() override {
    keys_.reset();
    pg_store_.reset();
    database_.reset();
    if (GetParam() == Backend::kPostgres && !dir_.empty()) std::filesystem::remove_all(dir_);
  }

  store::Store& store() { return temp_ != nullptr ? temp_->store() : *pg_store_; }
  bool OnSqlite() const { return GetParam() == Backend::kSqlite; }
  // A private directory for the test's files (signed-heads files).
  const std::string& dir() const { return dir_; }
  std::string SqlitePath() const { return dir_ + "/custos.db"; }

  std::unique_ptr<Sequencer> NewSequencer(int batch_size = 16384) {
    return std::make_unique<Sequencer>(
        store(), *keys_, clock_,
        SequencerOptions{.host = std::string(kHost), .batch_size = batch_size});
  }

  // What a node of several would run: a quick background thread, its own signed heads.
  std::unique_ptr<Sequencer> NewNode(store::Store& on, std::string heads, Metrics* metrics,
                                     int batch_size = 16384) {
    return std::make_unique<Sequencer>(on, *keys_, clock_,
                                       SequencerOptions{.host = std::string(kHost),
                                                        .batch_size = batch_size,
                                                        .interval = absl::Milliseconds(2),
                                                        .signed_heads_path = std::move(heads),
                                                        .metrics = metrics,
                                                        .leader_retry = absl::Milliseconds(2)});
  }

  // Checks one log as a verifier would: each of its `count` events exactly once, at positions
  // 0..count-1 in commit order, nothing left in the outbox, every checkpoint stored for it over
  // a prefix of that one tree, the latest over all of it.
  void ExpectOneHistory(std::string_view log_id, size_t count) {
    SCOPED_TRACE(log_id);
    std::vector<store::EventRecord> events = EventsOf(log_id);  // in commit order
    ASSERT_EQ(events.size(), count);
    std::vector<std::string> leaves;
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_TRUE(events[i].log_index.has_value()) << "event " << i << " was never sequenced";
      ASSERT_EQ(*events[i].log_index, i) << "positions follow commit order, once each";
      leaves.push_back(merkle::LeafHash(events[i].json));
    }
    auto outbox = store::ReadResult(
        store(), [](store::Transaction& tx) { return tx.Logs().Unsequenced(10); });
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    EXPECT_TRUE(outbox->empty());
    int checkpoints = 0;
    for (size_t size = 1; size <= count; ++size) {
      auto checkpoint = store::ReadResult(
          store(), [&](store::Transaction& tx) { return tx.Logs().GetCheckpoint(log_id, size); });
      if (absl::IsNotFound(checkpoint.status())) continue;
      ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
      ++checkpoints;
      EXPECT_EQ(checkpoint->root_hash,
                merkle::RootFromLeafHashes({leaves.begin(), leaves.begin() + size}))
          << "the checkpoint at size " << size << " is over another tree: a fork";
    }
    EXPECT_GT(checkpoints, 0);
    EXPECT_EQ(OpenLatest(log_id).size, count);
  }

  // Appends `n` events to `tenant`'s log (one transaction each, as requests do).
  void AppendEvents(std::string_view tenant, int n) {
    for (int i = 0; i < n; ++i) {
      RequestContext ctx;
      ctx.actor = SystemPrincipal();
      EventSpec spec{.event_type = "user.lifecycle.create",
                     .debug_data = {{"n", std::to_string(i)}}};
      store::EventRecord event =
          MakeEvent(TenantId(std::string(tenant)), ctx, spec, clock_, random_);
      ASSERT_TRUE(
          store()
              .Write([&](store::Transaction& tx) { return tx.Events().Append(event).status(); })
              .ok());
    }
  }

  std::vector<store::EventRecord> EventsOf(std::string_view tenant) {
    auto events = store::ReadResult(store(), [&](store::Transaction& tx) {
      return tx.Events().Query(TenantId(std::string(tenant)), store::EventQuery{.limit = 100000});
    });
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<store::EventRecord>{};
  }

  std::vector<note::VerifierKey> TrustedKeys() {
    std::vector<note::VerifierKey> out;
    absl::StatusOr<std::vector<std::string>> vkeys = keys_->VerifierKeys();
    EXPECT_TRUE(vkeys.ok()) << vkeys.status();
    for (const std::string& vkey : vkeys.value_or(std::vector<std::string>{})) {
      out.push_back(*note::ParseVerifierKey(vkey));
    }
    return out;
  }

  // Opens the latest checkpoint of `log_id` with the server's keys and parses it.
  Checkpoint OpenLatest(std::string_view log_id) {
    LogReader reader(store());
    auto latest = reader.LatestCheckpoint(log_id);
    EXPECT_TRUE(latest.ok()) << latest.status();
    auto opened = note::Open(latest->note, TrustedKeys());
    EXPECT_TRUE(opened.ok()) << opened.status();
    auto body = ParseCheckpoint(opened->body);
    EXPECT_TRUE(body.ok()) << body.status();
    return *body;
  }

  // Runs `sql` on the store's database behind the store's back.
  void ExecSql(const std::string& sql) {
    if (!OnSqlite()) {
      auto conn = store::postgres::Connection::Open(database_->url());
      ASSERT_TRUE(conn.ok()) << conn.status();
      EXPECT_TRUE((*conn)->Exec(sql).ok()) << sql;
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(SqlitePath().c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  // Copies the SQLite database `from` onto `to` with SQLite's online backup, as
  // `sqlite3 custos.db ".backup ..."` and ".restore" do: also onto the file of the open store.
  static void CopySqliteDatabase(const std::string& from, const std::string& to) {
    sqlite3* source = nullptr;
    sqlite3* target = nullptr;
    ASSERT_EQ(sqlite3_open(from.c_str(), &source), SQLITE_OK);
    ASSERT_EQ(sqlite3_open(to.c_str(), &target), SQLITE_OK);
    sqlite3_busy_timeout(target, 10000);
    sqlite3_backup* backup = sqlite3_backup_init(target, "main", source, "main");
    ASSERT_NE(backup, nullptr) << sqlite3_errmsg(target);
    EXPECT_EQ(sqlite3_backup_step(backup, -1), SQLITE_DONE) << sqlite3_errmsg(target);
    EXPECT_EQ(sqlite3_backup_finish(backup), SQLITE_OK) << sqlite3_errmsg(target);
    sqlite3_close(source);
    sqlite3_close(target);
  }

  FakeClock clock_;
  crypto::SeededRandom random_{7};
  std::unique_ptr<store::TempSqliteStore> temp_;             // on SQLite
  std::unique_ptr<store::postgres::TempDatabase> database_;  // on PostgreSQL, with pg_store_
  std::unique_ptr<store::Store> pg_store_;
  std::string dir_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<LogKeys> keys_;
};

TEST_P(SequencerTest, EveryEventLandsOnceInItsOwnLogUnderASignedRoot) {
  AppendEvents("00oacme", 300);
  AppendEvents("00oglobex", 5);
  auto sequencer = NewSequencer(/*batch_size=*/128);
  ASSERT_TRUE(sequencer->Drain().ok());

  for (auto [log_id, name, count] :
       {std::tuple{"00oacme", "acme", 300}, std::tuple{"00oglobex", "globex", 5}}) {
    std::vector<store::EventRecord> events = EventsOf(log_id);
    ASSERT_EQ(static_cast<int>(events.size()), count);
    std::vector<std::string> leaves;
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_TRUE(events[i].log_index.has_value());
      EXPECT_EQ(*events[i].log_index, i) << "indexes follow commit order";
      leaves.push_back(merkle::LeafHash(events[i].json));
    }
    Checkpoint checkpoint = OpenLatest(log_id);
    EXPECT_EQ(checkpoint.origin, fmt::format("{}/t/{}", kHost, name));
    EXPECT_EQ(checkpoint.size, static_cast<uint64_t>(count));
    EXPECT_EQ(checkpoint.root_hash, merkle::RootFromLeafHashes(leaves));
  }
  // The key creation went to the provider log.
  Checkpoint provider = OpenLatest(store::kProviderLogId);
  EXPECT_EQ(provider.origin, fmt::format("{}/provider", kHost));
  EXPECT_EQ(provider.size, 1u);
}

TEST_P(SequencerTest, CountsItsWorkInTheMetrics) {
  AppendEvents("00oacme", 4);
  Metrics metrics;
  Sequencer sequencer(store(), *keys_, clock_,
                      SequencerOptions{.host = std::string(kHost), .metrics = &metrics});
  ASSERT_TRUE(sequencer.Drain().ok());
  std::string text = metrics.TextExposition();
  EXPECT_THAT(text, HasSubstr("custos_log_events_sequenced_total 5"));    // 4 + the key event
  EXPECT_THAT(text, HasSubstr("custos_log_checkpoints_signed_total 2"));  // acme + provider
}

TEST_P(SequencerTest, ANewProcessContinuesTheTreeConsistently) {
  AppendEvents("00oacme", 70);
  ASSERT_TRUE(NewSequencer()->Drain().ok());
  Checkpoint first = OpenLatest("00oacme");

  AppendEvents("00oacme", 500);
  auto second_process = NewSequencer(/*batch_size=*/100);
  ASSERT_TRUE(second_process->Recover().ok());
  ASSERT_TRUE(second_process->Drain().ok());
  Checkpoint second = OpenLatest("00oacme");
  ASSERT_EQ(second.size, 570u);

  LogReader reader(store());
  auto proof = reader.Consistency("00oacme", first.size, second.size);
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_TRUE(merkle::VerifyConsistency(first.size, second.size, proof->hashes, first.root_hash,
                                        second.root_hash)
                  .ok());
}

TEST_P(SequencerTest, ACheckpointLostToACrashIsSignedOnRecovery) {
  AppendEvents("00oacme", 3);
  // No usable key: the tree is persisted but signing fails, as after a crash between the two.
  ExecSql("UPDATE log_keys SET retired = created");
  auto sequencer = NewSequencer();
  absl::StatusOr<int> round = sequencer->RunOnce();
  EXPECT_FALSE(round.ok());
  LogReader reader(store());
  EXPECT_TRUE(absl::IsNotFound(reader.LatestCheckpoint("00oacme").status()));

  ExecSql("UPDATE log_keys SET retired = NULL");
  sequencer.reset();  // the process ends (and its lease with it)
  auto restarted = NewSequencer();
  ASSERT_TRUE(restarted->Recover().ok());
  EXPECT_EQ(OpenLatest("00oacme").size, 3u);
  EXPECT_EQ(EventsOf("00oacme").back().log_index, 2u) << "sequenced once, not twice";
}

TEST_P(SequencerTest, RefusesToSignOverATreeThatDisagreesWithItsCheckpoint) {
  AppendEvents("00oacme", 20);
  ASSERT_TRUE(NewSequencer()->Drain().ok());
  // Someone rewrites a leaf hash in the stored tile.
  ExecSql(OnSqlite() ? "UPDATE log_tiles SET data = zeroblob(length(data)) WHERE log_id = '00oacme'"
                     : "UPDATE log_tiles SET data = decode(repeat('00', length(data)), 'hex') "
                       "WHERE log_id = '00oacme'");
  AppendEvents("00oacme", 1);
  auto sequencer = NewSequencer();
  absl::Status recovered = sequencer->Recover();
  EXPECT_TRUE(absl::IsDataLoss(recovered)) << recovered;
  EXPECT_THAT(std::string(recovered.message()), HasSubstr("00oacme"));
  EXPECT_TRUE(absl::IsDataLoss(sequencer->RunOnce().status()));
  EXPECT_EQ(OpenLatest("00oacme").size, 20u) << "nothing new signed";
}

TEST_P(SequencerTest, RefusesAStoreRestoredFromAnOlderCopy) {
  const std::string heads = dir() + "/log-heads";
  auto with_heads = [&] {
    return std::make_unique<Sequencer>(
        store(), *keys_, clock_,
        SequencerOptions{.host = std::string(kHost), .signed_heads_path = heads});
  };
  AppendEvents("00oacme", 5);
  ASSERT_TRUE(with_heads()->Drain().ok());
  // The database is rolled back to an empty log (as a restore of an older copy would), then
  // grows differently: the server must not sign a second history.
  ExecSql("DELETE FROM log_checkpoints WHERE log_id = '00oacme'");
  ExecSql("DELETE FROM log_tiles WHERE log_id = '00oacme'");
  ExecSql("DELETE FROM log_states WHERE log_id = '00oacme'");
  ExecSql("DELETE FROM log_entries WHERE log_id = '00oacme'");
  ExecSql("DELETE FROM events WHERE tenant_id = '00oacme'");
  ExecSql("UPDATE log_outbox SET sequenced_seq = (SELECT COALESCE(MAX(seq), 0) FROM events)");
  AppendEvents("00oacme", 7);
  auto restarted = with_heads();
  absl::Status recovered = restarted->Recover();
  EXPECT_TRUE(absl::IsDataLoss(recovered)) << recovered;
  EXPECT_THAT(std::string(recovered.message()), HasSubstr("restored from an older copy"));
  LogReader reader(store());
  EXPECT_TRUE(absl::IsNotFound(reader.LatestCheckpoint("00oacme").status()))
      << "nothing signed over the second history";
}

TEST_P(SequencerTest, ProofsFromTheReaderVerifyAgainstTheSignedRoot) {
  AppendEvents("00oacme", 600);
  ASSERT_TRUE(NewSequencer(/*batch_size=*/250)->Drain().ok());
  Checkpoint checkpoint = OpenLatest("00oacme");
  std::vector<store::EventRecord> events = EventsOf("00oacme");
  LogReader reader(store());
  for (uint64_t index : {0u, 1u, 255u, 256u, 511u, 599u}) {
    auto answer = reader.Inclusion("00oacme", index, std::nullopt);
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(answer->entry, events[index].json);
    EXPECT_TRUE(merkle::VerifyInclusion(index, checkpoint.size, merkle::LeafHash(answer->entry),
                                        answer->hashes, checkpoint.root_hash)
                    .ok())
        << index;
  }
  auto by_uuid = reader.InclusionByUuid("00oacme", events[300].uuid, std::nullopt);
  ASSERT_TRUE(by_uuid.ok()) << by_uuid.status();
  EXPECT_EQ(by_uuid->index, 300u);
  EXPECT_TRUE(absl::IsNotFound(reader.Inclusion("00oacme", 600, std::nullopt).status()));

  auto bundle = reader.Resource("00oacme", {.entries = true, .index = 2, .width = 88});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  auto entries = tiles::DecodeEntryBundle(*bundle);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 88u);
  EXPECT_EQ((*entries)[0], events[512].json);
  auto tile = reader.Resource("00oacme", {.level = 0, .index = 0, .width = 256});
  ASSERT_TRUE(tile.ok()) << tile.status();
  EXPECT_EQ(tile->substr(32 * 7, 32), merkle::LeafHash(events[7].json));
  // Nothing beyond the latest checkpoint is served.
  EXPECT_TRUE(absl::IsNotFound(
      reader.Resource("00oacme", {.entries = true, .index = 2, .width = 89}).status()));
  EXPECT_TRUE(
      absl::IsNotFound(reader.Resource("00oacme", {.level = 0, .index = 3, .width = 1}).status()));
}

TEST_P(SequencerTest, AfterRotationNewCheckpointsUseTheNewKeyAndOldOnesStillVerify) {
  AppendEvents("00oacme", 2);
  ASSERT_TRUE(NewSequencer()->Drain().ok());
  LogReader reader(store());
  std::string old_note = reader.LatestCheckpoint("00oacme")->note;
  std::vector<std::string> old_keys = *keys_->VerifierKeys();

  RequestContext ctx;
  ctx.actor = SystemPrincipal();
  auto vkey = keys_->Rotate(kHost, ctx);
  ASSERT_TRUE(vkey.ok()) << vkey.status();
  std::vector<std::string> keys = *keys_->VerifierKeys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], *vkey) << "the current key is listed first";
  EXPECT_EQ(keys[1], old_keys[0]);

  AppendEvents("00oacme", 1);
  ASSERT_TRUE(NewSequencer()->Drain().ok());
  std::string new_note = reader.LatestCheckpoint("00oacme")->note;
  EXPECT_TRUE(note::Open(new_note, {*note::ParseVerifierKey(*vkey)}).ok());
  EXPECT_FALSE(note::Open(new_note, {*note::ParseVerifierKey(old_keys[0])}).ok());
  EXPECT_TRUE(note::Open(old_note, {*note::ParseVerifierKey(old_keys[0])}).ok());
  // The rotation is an event in the provider log.
  EXPECT_EQ(EventsOf(store::kProviderLogId).back().event_type, "log.key.rotate");
}

// ---------------------------------------------------------------------------------------------
// Several processes (custos serve nodes on one database)

TEST_P(SequencerTest, OnlyTheLeaseHolderSequencesAndAnotherTakesOverWhenItStops) {
  Metrics metrics_a;
  Metrics metrics_b;
  auto a = NewNode(store(), dir() + "/heads-a", &metrics_a);
  auto b = NewNode(store(), dir() + "/heads-b", &metrics_b);
  a->Start();
  ASSERT_TRUE(Eventually([&] { return a->leading(); }));
  b->Start();
  AppendEvents("00oacme", 10);
  ASSERT_TRUE(Eventually([&] { return a->stats().events == 11; }));  // and the key's event
  EXPECT_FALSE(b->leading());
  EXPECT_EQ(b->stats().events, 0u) << "a follower sequences nothing";
  EXPECT_THAT(metrics_a.TextExposition(), HasSubstr("custos_log_sequencer_leader 1\n"));
  EXPECT_THAT(metrics_b.TextExposition(), HasSubstr("custos_log_sequencer_leader 0\n"));
  EXPECT_THAT(metrics_b.TextExposition(), Not(HasSubstr("\ncustos_log_sequencer_failures_total ")))
      << "following is not failing";
  EXPECT_THAT(metrics_b.TextExposition(),
              Not(HasSubstr("\ncustos_log_inconsistent_checkpoints_total ")))
      << "what a follower sees signed extends what it saw before";

  a->Stop();  // releases the lease
  EXPECT_FALSE(a->leading());
  EXPECT_THAT(metrics_a.TextExposition(), HasSubstr("custos_log_sequencer_leader 0\n"));
  ASSERT_TRUE(Eventually([&] { return b->leading(); }));
  EXPECT_THAT(metrics_b.TextExposition(), HasSubstr("custos_log_sequencer_leader 1\n"));
  AppendEvents("00oacme", 5);
  ASSERT_TRUE(Eventually([&] { return b->stats().events == 5; }));
  b->Stop();
  ExpectOneHistory("00oacme", 15);
}

TEST_P(SequencerTest, RoundsAreRefusedWhileAnotherProcessLeads) {
  AppendEvents("00oacme", 3);
  auto leader = NewSequencer();
  ASSERT_TRUE(leader->RunOnce().ok());
  EXPECT_TRUE(leader->leading());

  AppendEvents("00oacme", 2);
  auto other = NewSequencer();
  EXPECT_EQ(other->RunOnce().status(), Sequencer::NotLeadingError());
  EXPECT_EQ(other->Drain(), Sequencer::NotLeadingError());
  EXPECT_TRUE(other->Recover().ok()) << "a follower still checks the store";
  EXPECT_FALSE(other->leading());
  EXPECT_EQ(OpenLatest("00oacme").size, 3u) << "the follower signed nothing";

  leader->Stop();
  ASSERT_TRUE(other->Drain().ok());
  EXPECT_TRUE(other->leading());
  ExpectOneHistory("00oacme", 5);
}

TEST_P(SequencerTest, AStaleLeaderCannotForkTheLog) {
  // Both believe they lead, as a leader that stalled past losing its lease does.
  ForcedLeadStore shared(store());
  auto a = NewNode(shared, "", nullptr);
  auto b = NewNode(shared, "", nullptr);
  AppendEvents("00oacme", 5);
  ASSERT_EQ(a->RunOnce().value_or(-1), 6);  // and the key's event in the provider log
  AppendEvents("00oacme", 3);
  ASSERT_EQ(b->RunOnce().value_or(-1), 3);  // b loaded the logs as a wrote them

  // a's tree of acme has 5 entries; the store's has 8.
  AppendEvents("00oacme", 2);
  absl::StatusOr<int> stale = a->RunOnce();
  EXPECT_TRUE(absl::IsAborted(stale.status())) << stale.status();
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("log 00oacme"));
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("another sequencer"));
  EXPECT_FALSE(EventsOf("00oacme").back().log_index.has_value()) << "the round wrote nothing";
  EXPECT_EQ(a->RunOnce().value_or(-1), 2) << "the next round reloads and goes on";

  // Now b is the stale one; its round also touches a log it has not seen.
  AppendEvents("00oglobex", 1);
  AppendEvents("00oacme", 1);
  EXPECT_TRUE(absl::IsAborted(b->RunOnce().status()));
  EXPECT_TRUE(absl::IsNotFound(LogReader(store()).LatestCheckpoint("00oglobex").status()))
      << "nothing of an aborted round is signed";
  EXPECT_EQ(b->RunOnce().value_or(-1), 2);

  ExpectOneHistory("00oacme", 11);
  ExpectOneHistory("00oglobex", 1);
  ExpectOneHistory(store::kProviderLogId, 1);
}

TEST_P(SequencerTest, TwoLeadersRacingSequenceEveryEventOnceWithoutAFork) {
  ForcedLeadStore shared(store());
  auto a = NewNode(shared, "", nullptr, /*batch_size=*/7);
  auto b = NewNode(shared, "", nullptr, /*batch_size=*/7);
  std::atomic<bool> appending{true};
  std::atomic<int> aborted{0};
  std::atomic<int> other_errors{0};
  auto run = [&](Sequencer& sequencer) {
    while (true) {
      const bool last_pass = !appending.load();
      absl::StatusOr<int> n = sequencer.RunOnce();
      if (absl::IsAborted(n.status())) {
        ++aborted;
      } else if (!n.ok()) {
        ++other_errors;
        ADD_FAILURE() << n.status();
      }
      if (last_pass && n.ok() && *n == 0) return;
      if (n.ok() && *n == 0) absl::SleepFor(absl::Microseconds(300));
    }
  };
  {
    std::jthread runner_a([&] { run(*a); });
    std::jthread runner_b([&] { run(*b); });
    for (int i = 0; i < 60; ++i) {
      AppendEvents(i % 3 == 0 ? "00oglobex" : "00oacme", 1 + i % 4);
    }
    appending = false;
  }
  EXPECT_EQ(other_errors.load(), 0);
  ExpectOneHistory("00oacme", 100);
  ExpectOneHistory("00oglobex", 50);
  ExpectOneHistory(store::kProviderLogId, 1);
  EXPECT_EQ(a->stats().events + b->stats().events, 151u) << "each event sequenced once";
  RecordProperty("aborted_rounds", aborted.load());
}

TEST_P(SequencerTest, ALostLeaseStopsRoundsUntilItIsTakenAgain) {
  ForcedLeadStore shared(store());
  Metrics metrics;
  auto a = NewNode(shared, "", &metrics);
  auto b = NewNode(shared, "", nullptr);
  AppendEvents("00oacme", 2);
  ASSERT_TRUE(a->RunOnce().ok());
  EXPECT_THAT(metrics.TextExposition(), HasSubstr("custos_log_sequencer_leader 1\n"));

  // a's lease is lost and another node holds it: a steps down.
  shared.RevokeLeases();
  shared.refuse = true;
  EXPECT_EQ(a->RunOnce().status(), Sequencer::NotLeadingError());
  EXPECT_FALSE(a->leading());
  EXPECT_THAT(metrics.TextExposition(), HasSubstr("custos_log_sequencer_leader 0\n"));

  shared.refuse = false;
  AppendEvents("00oacme", 4);
  ASSERT_EQ(b->RunOnce().value_or(-1), 4);
  // b's turn ends; a leads again and first reloads what b wrote: no aborted round.
  shared.RevokeLeases();
  AppendEvents("00oacme", 1);
  ASSERT_EQ(a->RunOnce().value_or(-1), 1);
  EXPECT_TRUE(a->leading());
  EXPECT_THAT(metrics.TextExposition(), HasSubstr("custos_log_sequencer_leader 1\n"));
  ExpectOneHistory("00oacme", 7);
}

TEST_P(SequencerTest, ASignedHeadsFileBehindTheStoreIsAcceptedWhenTheStoreExtendsIt) {
  const std::string heads_a = dir() + "/heads-a";
  const std::string heads_b = dir() + "/heads-b";
  AppendEvents("00oacme", 5);
  auto a = NewNode(store(), heads_a, nullptr);
  ASSERT_TRUE(a->Drain().ok());
  a->Stop();

  // Node b leads for a while and signs past what a's file says.
  AppendEvents("00oacme", 4);
  auto b = NewNode(store(), heads_b, nullptr);
  ASSERT_TRUE(b->Drain().ok());
  b->Stop();
  EXPECT_EQ(OpenLatest("00oacme").size, 9u);

  // a leads again: its file (acme at 5) is behind the store (9), which extends it.
  AppendEvents("00oacme", 2);
  ASSERT_TRUE(a->Recover().ok());
  ASSERT_TRUE(a->Drain().ok());
  ExpectOneHistory("00oacme", 11);
  std::ifstream file(heads_a);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("00oacme 11 ")) << "a's file follows what a signed";
}

// The file a node keeps of what was signed; "" when there is none.
std::string ReadHeads(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// A node that never led keeps, while following, what the leader signed: when the database comes
// back older (a restore, an asynchronous standby promoted without the last commits) and that node
// takes over, it refuses to sign rather than sign a second history.
TEST_P(SequencerTest, ANodeThatOnlyFollowedRefusesAStoreRestoredBehindWhatItSawSigned) {
  if (!OnSqlite()) GTEST_SKIP() << "restores a copy of the SQLite file";
  const std::string heads_b = dir() + "/heads-b";
  auto a = NewNode(store(), dir() + "/heads-a", nullptr);
  auto b = NewNode(store(), heads_b, nullptr);
  AppendEvents("00oacme", 5);
  ASSERT_EQ(a->RunOnce().value_or(-1), 6);  // and the key's event in the provider log
  EXPECT_EQ(b->RunOnce().status(), Sequencer::NotLeadingError());
  const std::string backup = dir() + "/backup.db";
  CopySqliteDatabase(SqlitePath(), backup);

  AppendEvents("00oacme", 3);
  ASSERT_EQ(a->RunOnce().value_or(-1), 3);
  EXPECT_EQ(b->RunOnce().status(), Sequencer::NotLeadingError());
  EXPECT_THAT(ReadHeads(heads_b), HasSubstr("00oacme 8 ")) << "b keeps what a signed";
  const Checkpoint published = OpenLatest("00oacme");
  ASSERT_EQ(published.size, 8u);
  a->Stop();

  CopySqliteDatabase(backup, SqlitePath());
  ASSERT_EQ(OpenLatest("00oacme").size, 5u);
  AppendEvents("00oacme", 4);  // a history that differs from the published one at entry 5
  absl::StatusOr<int> round = b->RunOnce();
  EXPECT_TRUE(absl::IsDataLoss(round.status())) << round.status();
  EXPECT_THAT(std::string(round.status().message()), HasSubstr("00oacme"));
  EXPECT_TRUE(b->leading()) << "it keeps the lease, so that no other node signs meanwhile";
  EXPECT_EQ(OpenLatest("00oacme").size, 5u) << "nothing signed over the restored store: no fork";
  EXPECT_TRUE(absl::IsDataLoss(b->RunOnce().status()));
}

TEST_P(SequencerTest, AFollowerReportsAStoreThatWentBehindWhatItSawSignedOnce) {
  if (!OnSqlite()) GTEST_SKIP() << "restores a copy of the SQLite file";
  Metrics metrics_b;
  const std::string heads_b = dir() + "/heads-b";
  auto a = NewNode(store(), dir() + "/heads-a", nullptr);
  auto b = NewNode(store(), heads_b, &metrics_b);
  AppendEvents("00oglobex", 2);
  ASSERT_EQ(a->RunOnce().value_or(-1), 3);
  const std::string backup = dir() + "/backup.db";
  CopySqliteDatabase(SqlitePath(), backup);
  AppendEvents("00oglobex", 1);
  AppendEvents("00oacme", 2);
  ASSERT_EQ(a->RunOnce().value_or(-1), 3);
  EXPECT_EQ(b->RunOnce().status(), Sequencer::NotLeadingError());
  EXPECT_THAT(metrics_b.TextExposition(),
              Not(HasSubstr("\ncustos_log_inconsistent_checkpoints_total ")));

  // Restored while a still leads: globex went back from 3 to 2 entries, acme vanished.
  CopySqliteDatabase(backup, SqlitePath());
  EXPECT_EQ(b->RunOnce().status(), Sequencer::NotLeadingError());
  EXPECT_THAT(metrics_b.TextExposition(),
              HasSubstr("\ncustos_log_inconsistent_checkpoints_total 2\n"));
  EXPECT_EQ(b->RunOnce().status(), Sequencer::NotLeadingError());
  EXPECT_THAT(metrics_b.TextExposition(),
              HasSubstr("\ncustos_log_inconsistent_checkpoints_total 2\n"))
      << "each inconsistency is reported once";
  const std::string heads = ReadHeads(heads_b);
  EXPECT_THAT(heads, HasSubstr("00oglobex 3 ")) << "the file keeps what was signed";
  EXPECT_THAT(heads, HasSubstr("00oacme 2 "));
}

// A follower records only checkpoints that verify with the log's keys.
TEST_P(SequencerTest, AFollowerRecordsNoCheckpointThatDoesNotVerify) {
  Metrics metrics_b;
  const std::string heads_b = dir() + "/heads-b";
  auto a = NewNode(store(), dir() + "/heads-a", nullptr);
  auto b = NewNode(store(), heads_b, &metrics_b);
  AppendEvents("00oacme", 2);
  ASSERT_EQ(a->RunOnce().value_or(-1), 3);
  ExecSql(
      "UPDATE log_checkpoints SET note = replace(note, 'id.example.com/t/acme', "
      "'id.example.com/t/acmf') WHERE log_id = '00oacme'");
  EXPECT_EQ(b->RunOnce().status(), Sequencer::NotLeadingError());
  EXPECT_THAT(metrics_b.TextExposition(),
              HasSubstr("\ncustos_log_inconsistent_checkpoints_total 1\n"));
  EXPECT_THAT(ReadHeads(heads_b), Not(HasSubstr("00oacme "))) << "nothing recorded for acme";
  EXPECT_THAT(ReadHeads(heads_b), HasSubstr(fmt::format("{} 1 ", store::kProviderLogId)));
}

#if defined(CUSTOS_SEQUENCER_TEST_ON_POSTGRES)
INSTANTIATE_TEST_SUITE_P(Postgres, SequencerTest, ::testing::Values(Backend::kPostgres),
                         BackendName);
#else
INSTANTIATE_TEST_SUITE_P(Sqlite, SequencerTest, ::testing::Values(Backend::kSqlite), BackendName);
#endif

}  // namespace
}  // namespace custos::audit
