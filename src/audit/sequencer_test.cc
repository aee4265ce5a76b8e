#include "audit/sequencer.h"

#include <memory>
#include <string>
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
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::audit {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kHost = "id.example.com";

class SequencerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
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

  store::Store& store() { return temp_->store(); }

  std::unique_ptr<Sequencer> NewSequencer(int batch_size = 16384) {
    return std::make_unique<Sequencer>(
        store(), *keys_, clock_,
        SequencerOptions{.host = std::string(kHost), .batch_size = batch_size});
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

  void ExecSql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((temp_->dir() + "/custos.db").c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  FakeClock clock_;
  crypto::SeededRandom random_{7};
  std::unique_ptr<store::TempSqliteStore> temp_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<LogKeys> keys_;
};

TEST_F(SequencerTest, EveryEventLandsOnceInItsOwnLogUnderASignedRoot) {
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

TEST_F(SequencerTest, CountsItsWorkInTheMetrics) {
  AppendEvents("00oacme", 4);
  Metrics metrics;
  Sequencer sequencer(store(), *keys_, clock_,
                      SequencerOptions{.host = std::string(kHost), .metrics = &metrics});
  ASSERT_TRUE(sequencer.Drain().ok());
  std::string text = metrics.TextExposition();
  EXPECT_THAT(text, HasSubstr("custos_log_events_sequenced_total 5"));    // 4 + the key event
  EXPECT_THAT(text, HasSubstr("custos_log_checkpoints_signed_total 2"));  // acme + provider
}

TEST_F(SequencerTest, ANewProcessContinuesTheTreeConsistently) {
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

TEST_F(SequencerTest, ACheckpointLostToACrashIsSignedOnRecovery) {
  AppendEvents("00oacme", 3);
  // No usable key: the tree is persisted but signing fails, as after a crash between the two.
  ExecSql("UPDATE log_keys SET retired = created");
  auto sequencer = NewSequencer();
  absl::StatusOr<int> round = sequencer->RunOnce();
  EXPECT_FALSE(round.ok());
  LogReader reader(store());
  EXPECT_TRUE(absl::IsNotFound(reader.LatestCheckpoint("00oacme").status()));

  ExecSql("UPDATE log_keys SET retired = NULL");
  auto restarted = NewSequencer();
  ASSERT_TRUE(restarted->Recover().ok());
  EXPECT_EQ(OpenLatest("00oacme").size, 3u);
  EXPECT_EQ(EventsOf("00oacme").back().log_index, 2u) << "sequenced once, not twice";
}

TEST_F(SequencerTest, RefusesToSignOverATreeThatDisagreesWithItsCheckpoint) {
  AppendEvents("00oacme", 20);
  ASSERT_TRUE(NewSequencer()->Drain().ok());
  // Someone rewrites a leaf hash in the stored tile.
  ExecSql("UPDATE log_tiles SET data = zeroblob(length(data)) WHERE log_id = '00oacme'");
  AppendEvents("00oacme", 1);
  auto sequencer = NewSequencer();
  absl::Status recovered = sequencer->Recover();
  EXPECT_TRUE(absl::IsDataLoss(recovered)) << recovered;
  EXPECT_THAT(std::string(recovered.message()), HasSubstr("00oacme"));
  EXPECT_TRUE(absl::IsDataLoss(sequencer->RunOnce().status()));
  EXPECT_EQ(OpenLatest("00oacme").size, 20u) << "nothing new signed";
}

TEST_F(SequencerTest, RefusesAStoreRestoredFromAnOlderCopy) {
  const std::string heads = temp_->dir() + "/log-heads";
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

TEST_F(SequencerTest, ProofsFromTheReaderVerifyAgainstTheSignedRoot) {
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

TEST_F(SequencerTest, AfterRotationNewCheckpointsUseTheNewKeyAndOldOnesStillVerify) {
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

}  // namespace
}  // namespace custos::audit
